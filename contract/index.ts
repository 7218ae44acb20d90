// The one contract module: zod schemas and types shared by the server, the CLI, the extension and the
// webview. Nothing else re-declares these shapes. The database enforces the same rules again.
import { z } from 'zod';

export const STAGES = ['production', 'staging', 'development'] as const;
export const ROLES = ['viewer', 'developer', 'tester', 'admin'] as const;
export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const TERMINAL_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;
export const LOG_STREAMS = ['stdout', 'stderr', 'system'] as const;

/** Largest JSON body the API accepts. */
export const MAX_BODY_BYTES = 256 * 1024;
/** Largest serialized run params, same limit as the runs_params_object check. */
export const MAX_PARAMS_BYTES = 16 * 1024;

export const Stage = z.enum(STAGES);
export const Role = z.enum(ROLES);
export const RunStatus = z.enum(RUN_STATUSES);
export const LogStream = z.enum(LOG_STREAMS);
export type Stage = z.infer<typeof Stage>;
export type Role = z.infer<typeof Role>;
export type RunStatus = z.infer<typeof RunStatus>;
export type LogStream = z.infer<typeof LogStream>;

export const Uuid = z.uuid();
/**
 * Who OdooOps itself is when it acts without a person (a push's webhook, the daily schedule, the demo):
 * runs and approvals it requests carry this id, and whoever approves one of its requests may run it.
 */
export const SERVICE_USER_ID = '00000000-0000-0000-0000-000000000000';
export const ProjectSlug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$/, 'use 2-63 lower-case letters, digits and dashes, e.g. "acme-erp"');
export const EnvironmentName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'use lower-case letters, digits, ".", "_" and "-", e.g. "staging"');
/** A git branch name, by the rules of git check-ref-format that matter for environments. */
export const BranchName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._/-]*$/, 'a branch name uses letters, digits, ".", "_", "/" and "-"')
  .refine((b) => !b.includes('..') && !b.includes('//') && !b.includes('/.'), 'a branch name has no "..", "//" or "/."')
  .refine((b) => !/(\/|\.|\.lock)$/.test(b), 'a branch name does not end with "/", "." or ".lock"');
export const RunKind = z.string().regex(/^[a-z][a-z0-9_.-]{0,39}$/, 'a run kind is lower-case, e.g. "health"');
export const IdempotencyKey = z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, 'use up to 200 of A-Z a-z 0-9 . _ : -');
export const DbIdentifier = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/, 'a PostgreSQL name of up to 63 characters');
/**
 * An Odoo database an environment manages: a PostgreSQL name, but never a server's own databases nor one
 * of the side databases OdooOps makes while it restores or clones (…_odooops_new_42).
 */
export const OdooDatabaseName = DbIdentifier
  .refine((n) => !/^(postgres|template[01])$/i.test(n), 'postgres, template0 and template1 are the server\'s own databases, not Odoo\'s')
  .refine((n) => !n.includes('_odooops_'), '"_odooops_" marks the side databases OdooOps makes; choose another name');
/**
 * The name of an entry of the operator's infrastructure registry (a database server, a filestore root, an
 * Odoo runtime, a repository). Projects refer to infrastructure only by these names.
 */
export const InfraName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a registry name: lower-case letters, digits, ".", "_" and "-"');
export const INFRA_KINDS = ['database_server', 'filestore_root', 'runtime', 'repository', 'secret', 'backup_store', 'alert_channel'] as const;
export const InfraKind = z.enum(INFRA_KINDS);
export type InfraKind = z.infer<typeof InfraKind>;
export const RunParams = z
  .record(z.string(), z.unknown())
  .refine((p) => Buffer.byteLength(JSON.stringify(p)) <= MAX_PARAMS_BYTES, `params are limited to ${MAX_PARAMS_BYTES} bytes of JSON`);

// Requests ------------------------------------------------------------------------------------------
export const CreateProject = z.strictObject({
  slug: ProjectSlug,
  name: z.string().trim().min(1).max(200),
});
export const AddMember = z.strictObject({
  userId: Uuid,
  role: Role,
  displayName: z.string().max(200).optional(),
});
export const UpdateMember = z.strictObject({ role: Role });
/** Where an environment's Odoo database lives: a database server of the registry, and the database's name. */
export const EnvironmentDatabase = z.strictObject({
  server: InfraName,
  name: OdooDatabaseName,
});
export const EnvironmentUrl = z.url({ protocol: /^https?$/ }).max(2000);
export const CreateEnvironment = z.strictObject({
  name: EnvironmentName,
  stage: Stage,
  branch: BranchName.optional(),
  url: EnvironmentUrl.optional(),
  database: EnvironmentDatabase,
  /** A filestore root of the registry; the environment's filestore is <root>/<database name>. */
  filestore: InfraName.optional(),
});
/** `odooops env set`: what changes; null clears a setting. Database, filestore and runtime are for admins. */
export const UpdateEnvironment = z.strictObject({
  branch: BranchName.nullable().optional(),
  url: EnvironmentUrl.nullable().optional(),
  database: z.strictObject({ server: InfraName.optional(), name: OdooDatabaseName.optional() }).optional(),
  filestore: InfraName.nullable().optional(),
}).refine((u) => Object.values(u).some((v) => v !== undefined), 'nothing to change: give at least one setting');
/**
 * "Create development environment from branch…": the branch's environment (created if it has none),
 * then a deploy of the branch's newest commit (default when the project has a repository), a masked
 * clone of production, or nothing.
 */
export const CreateDevEnvironment = z.strictObject({
  branch: BranchName,
  then: z.enum(['deploy', 'clone', 'nothing']).optional(),
});
export const QueueRun = z.strictObject({
  kind: RunKind,
  params: RunParams.default({}),
  idempotencyKey: IdempotencyKey.optional(),
  approvalId: Uuid.optional(),
  maxAttempts: z.number().int().min(1).max(20).optional(),
});
/** A retry runs the failed run again as it was queued: nothing of it (params, approval) can be changed. */
export const RetryRun = z.strictObject({});
export const RequestApproval = z.strictObject({
  kind: RunKind,
  params: RunParams.default({}),
  reason: z.string().max(2000).optional(),
});
export const ListRunsQuery = z.strictObject({
  project: ProjectSlug.optional(),
  environment: EnvironmentName.optional(),
  status: RunStatus.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().optional(),
});
export const LogsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});

export type CreateProject = z.infer<typeof CreateProject>;
export type AddMember = z.infer<typeof AddMember>;
export type CreateEnvironment = z.infer<typeof CreateEnvironment>;
export type UpdateEnvironment = z.infer<typeof UpdateEnvironment>;
export type CreateDevEnvironment = z.infer<typeof CreateDevEnvironment>;
export type QueueRun = z.input<typeof QueueRun>;
export type RequestApproval = z.input<typeof RequestApproval>;

// Responses -----------------------------------------------------------------------------------------
export const Project = z.object({
  id: Uuid,
  slug: z.string(),
  name: z.string(),
  role: Role.nullable(),
  createdAt: z.string(),
  /** The registry secret whose value is the password of its clones' users; null: a fresh one per clone. */
  clonePasswordSecret: z.string().nullable().optional(),
  /** The registry's backup store its backups are written to ("default": the server's own directory). */
  backupStore: z.string().optional(),
  /** The store every backup is also copied to in the same run; null: none. */
  backupCopy: z.string().nullable().optional(),
  /** The stages of environments your role may run things on (queue, cancel, approve, download backups). */
  operates: z.array(Stage).optional(),
});
export const Member = z.object({
  userId: Uuid,
  role: Role,
  displayName: z.string().nullable(),
  addedAt: z.string(),
  /**
   * What to call them: the display name an admin gave, else their name on GitHub, else their GitHub login,
   * else the verified email they signed in with.
   */
  name: z.string().nullable().optional(),
  githubLogin: z.string().nullable().optional(),
});
export const Environment = z.object({
  id: Uuid,
  project: z.string(),
  name: z.string(),
  stage: Stage,
  branch: z.string().nullable(),
  url: z.string().nullable(),
  database: z.object({ server: z.string().nullable(), name: z.string() }),
  /** The filestore root (a registry name); the filestore is <root>/<database name> on the worker. */
  filestore: z.string().nullable(),
  /** How Odoo runs for this environment: a runtime of the registry (and its HTTP port for a local one). */
  runtime: z.object({ name: z.string(), httpPort: z.number().nullable() }).nullable(),
  activeRunId: z.number().nullable(),
});
export const Run = z.object({
  id: z.number(),
  project: z.string(),
  environment: z.string(),
  kind: z.string(),
  status: RunStatus,
  params: z.record(z.string(), z.unknown()),
  requestedBy: z.string().nullable(),
  idempotencyKey: z.string().nullable(),
  approvalId: z.string().nullable(),
  attempts: z.number(),
  maxAttempts: z.number(),
  leaseOwner: z.string().nullable(),
  leaseExpiresAt: z.string().nullable(),
  cancelRequested: z.boolean(),
  queuedAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  error: z.string().nullable(),
  result: z.unknown().nullable(),
  lastSeq: z.number(),
});
/**
 * One failed or errored test of a build, from Odoo's test log. `file` is relative to the repository's
 * root (as the workspace has it), never a worker path; null when the traceback names no file of the
 * repository (a failure inside Odoo itself).
 */
export const TestFailure = z.object({
  outcome: z.enum(['failed', 'error']),
  /** Odoo's name for it: "test_name (odoo.addons.module.tests.test_file.TestClass.test_name)". */
  test: z.string().max(1000),
  module: z.string().max(200).nullable(),
  file: z.string().max(1000).nullable(),
  line: z.number().int().positive().nullable(),
  /** The traceback's last line ("AssertionError: 1 != 2"). */
  message: z.string().max(4000),
  traceback: z.string().max(20_000),
});
/** A build's tests (the `tests` of a build run's result). failed + errors = 0 is a passing build. */
export const TestSummary = z.object({
  /** The repository's modules whose tests ran (--test-tags /<module>,…). */
  modules: z.array(z.string()),
  tests: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  /** At most 100, in the log's order; failed + errors tells how many there were. */
  failures: z.array(TestFailure).max(100),
});
/** What a `build` run returns: the commit it built and its tests. */
export const BuildResult = z.object({
  revision: z.string(),
  odooVersion: z.string().nullable(),
  tests: TestSummary,
  /** Wall time of the fresh database with the modules installed and their tests run. */
  seconds: z.number().nonnegative(),
});
export const DevEnvironment = z.object({
  environment: Environment,
  /** false: the branch already had its environment (the call is safe to repeat). */
  created: z.boolean(),
  run: Run.nullable(),
});
export const LogLine = z.object({
  seq: z.number(),
  ts: z.string(),
  stream: LogStream,
  line: z.string(),
});
export const LogPage = z.object({
  runId: z.number(),
  lines: z.array(LogLine),
  /** Pass as `after` to get what follows; equal to the request's `after` when nothing new was there. */
  nextAfter: z.number(),
  status: RunStatus,
});
/**
 * A 'log' announcement on the private Realtime topic run:<id>: the lines stored since the previous one,
 * first_seq..last_seq, at most 4 a second (the Realtime budget, server/realtime/budget.ts). `lines` are
 * all of them when they fit in 2 KB; otherwise none, `partial` is true, and they are read from the API
 * (LogPage, after=<seq>).
 */
export const LogBroadcast = z.object({
  run_id: z.number(),
  first_seq: z.number(),
  last_seq: z.number(),
  partial: z.boolean().optional(),
  lines: z.array(LogLine),
});
/** A backup's manifest.json: what it holds and how to check it (SHA-256 of each part). */
export const BackupPart = z.object({ key: z.string(), bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
/**
 * Which filestore files a clone takes: assets (what Odoo needs to boot; business documents'
 * attachments are emptied), placeholders (assets, and business documents point to a placeholder file),
 * all, or none.
 */
export const FilestorePolicy = z.enum(['assets', 'placeholders', 'all', 'none']);
export type FilestorePolicy = z.infer<typeof FilestorePolicy>;

/** The filestore as one tarball (backups before issue 16, and imports made then): still read. */
export const TarballFilestore = BackupPart.extend({ files: z.number().int().nonnegative() });
/**
 * The filestore as content objects: each file stored once per project and store under its SHA-1
 * (store.contentKey), and an index (gzip'd JSON lines {"p": path, "s": sha1, "n": size}) listing every
 * file of this backup; `uploaded` is what this backup added to the store (the rest was there already).
 */
export const ObjectsFilestore = z.object({
  format: z.literal('objects'),
  index: BackupPart,
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  uploaded: z.object({ files: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }),
});
export type ObjectsFilestore = z.infer<typeof ObjectsFilestore>;

export const BackupManifest = z.object({
  format: z.literal('odooops-backup/1'),
  database: z.string(),
  createdAt: z.string(),
  kind: z.enum(['daily', 'manual', 'pre-deploy', 'clone', 'import']),
  odoo: z.object({ version: z.string(), majorVersion: z.string() }),
  /** Installed modules: name → latest_version, as Odoo's own manifest.json has them. */
  modules: z.record(z.string(), z.string()),
  postgres: z.object({ server: z.string(), pgDump: z.string() }),
  dump: BackupPart,
  /** Null when the environment has no filestore configured. */
  filestore: z.union([ObjectsFilestore, TarballFilestore]).nullable(),
  /** Set on clones: a neutralized, masked copy of another environment. */
  clone: z.object({ source: z.string(), sourceStage: z.string(), masked: z.literal(true), filestore: FilestorePolicy }).optional(),
  /** Set on imports: what was uploaded (its SHA-256 is what an approval was given for). */
  import: z.object({ upload: z.uuid(), sha256: z.string(), format: z.enum(['odoo-zip', 'pg-dump', 'bundle']), sourceDatabase: z.string().nullable() }).optional(),
});
export type BackupManifest = z.infer<typeof BackupManifest>;
/**
 * A masking profile: which columns of an Odoo database hold personal data and how each is replaced in
 * clones. Keys are "table.column" (lower-case SQL names); a column or table a version lacks is skipped.
 */
const SqlName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL name');
export const MaskStrategy = z.enum(['name', 'email', 'phone', 'text', 'null', 'fixed', 'keep']);
export const RowFilter = z.strictObject({
  column: SqlName,
  op: z.enum(['eq', 'ne', 'in', 'not_in', 'is_null', 'not_null']),
  value: z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]).optional(),
});
export const MaskRule = z.strictObject({
  strategy: MaskStrategy,
  /** For strategy "fixed". */
  value: z.string().optional(),
  /** Only rows matching this filter are masked. */
  where: RowFilter.optional(),
}).refine((r) => r.strategy !== 'fixed' || r.value !== undefined, { message: 'strategy "fixed" needs a value' });
export const MaskProfile = z.strictObject({
  version: z.literal(1),
  /** "table.column" → rule. */
  columns: z.record(z.string().regex(/^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$/, 'table.column'), MaskRule),
  /** Tables emptied in clones (device logs, API keys, outgoing mail queue...). */
  truncate: z.array(SqlName).default([]),
  /**
   * The companies' own contact data (res_company and the companies' partners): "keep" (when absent)
   * leaves it readable in clones, as Odoo.sh does; "mask" applies the column rules to it too (a sole
   * trader's company data is a person's).
   */
  companies: z.enum(['keep', 'mask']).optional(),
});
export type MaskProfile = z.infer<typeof MaskProfile>;
export type MaskRule = z.infer<typeof MaskRule>;
/**
 * A project's masking policy (GET/PUT/DELETE /api/projects/:p/masking): the profile its clones use,
 * set by a project admin; a clone run's `profile` param can only make it stricter.
 */
export const ProjectMasking = z.object({
  /** The effective profile, the floors included. */
  profile: MaskProfile,
  /** True when no admin has set one: OdooOps's default profile applies. */
  isDefault: z.boolean(),
  /** What no profile can lower (production password hashes never leave production...). */
  floors: z.array(z.string()),
});
export type ProjectMasking = z.infer<typeof ProjectMasking>;
/** A backup as the API lists it. */
export const Backup = z.object({
  id: Uuid,
  environment: z.string(),
  kind: z.enum(['daily', 'manual', 'pre-deploy', 'clone', 'import']),
  createdAt: z.string(),
  sizeBytes: z.number(),
  sha256: z.string().nullable(),
  odooVersion: z.string().nullable(),
  /** The Odoo database it is a backup of (its manifest's), which names its download. */
  database: z.string().nullable(),
  /** A neutralized, masked clone of another environment. */
  masked: z.boolean(),
  runId: z.number().nullable(),
  /** The registry's stores that hold all of it, the one it was written to first. */
  stores: z.array(z.string()).optional(),
});
export type Backup = z.infer<typeof Backup>;
/**
 * What a downloaded backup is called (the server's Content-Disposition, so the CLI's default, and the
 * extension's save dialog): as Odoo's database manager names its own, <database>_<YYYY-MM-DD_HH-MM-SS>.zip,
 * at the backup's time (UTC).
 */
export function backupFileName(database: string, createdAt: string): string {
  const at = new Date(createdAt).toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-');
  return `${database.replace(/[^A-Za-z0-9_.-]/g, '_')}_${at}.zip`;
}
/**
 * How Odoo is deployed for an environment: a runtime of the operator's registry (odoo-bin on the worker's
 * machine, or a host reached over ssh with its fixed command lines), and for a local runtime the HTTP port,
 * within the range the runtime allows.
 */
export const DeployTarget = z.strictObject({
  runtime: InfraName,
  httpPort: z.number().int().min(1).max(65535).optional(),
});
export type DeployTarget = z.infer<typeof DeployTarget>;
/** An entry of the operator's registry as the API shows it: its name and what it is, never a secret. */
export const InfraEntry = z.object({
  kind: InfraKind,
  name: z.string(),
  description: z.string(),
  /** Facts a project admin needs to pick it: a runtime's kind and port range, a repository's URL pattern. */
  details: z.record(z.string(), z.unknown()),
  /** Which projects may use it (slugs, or "*"); shown to instance admins only. */
  projects: z.array(z.string()).optional(),
});
export type InfraEntry = z.infer<typeof InfraEntry>;
export const GrantInstanceAdmin = z.strictObject({ userId: Uuid });
export const InstanceAdmin = z.object({ userId: Uuid, addedBy: z.string().nullable(), addedAt: z.string() });
export type InstanceAdmin = z.infer<typeof InstanceAdmin>;
/**
 * A project's settings (PATCH /api/projects/:p, admins). clonePasswordSecret names a secret of the
 * operator's registry bound to the project, never a password or where one is (env:/file:).
 */
export const UpdateProject = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  clonePasswordSecret: InfraName.nullable().optional(),
  /** Backup stores of the registry bound to the project: where backups go, and where each is copied (null: no copy). */
  backupStore: InfraName.optional(),
  backupCopy: InfraName.nullable().optional(),
});
export type UpdateProject = z.infer<typeof UpdateProject>;
/**
 * How to log in to an environment's latest clone (GET …/environments/:e/clone-login), for members who
 * may operate the environment: the logins, and either the fresh password OdooOps made for it or the
 * name of the registry secret whose value it is (the value is never shown).
 */
export const CloneLogin = z.object({
  environment: z.string(),
  runId: z.number(),
  createdAt: z.string(),
  logins: z.array(z.string()),
  password: z.string().nullable(),
  passwordSecret: z.string().nullable(),
});
export type CloneLogin = z.infer<typeof CloneLogin>;
/** A project's git settings (admins change them). */
export const ProjectGit = z.strictObject({
  repoUrl: z.string().regex(/^[^\s-][^\s]{0,1999}$/, 'a URL or path git understands')
    .refine((u) => !/(^|[/:])\.\.?(\/|$)/.test(u), 'no "." or ".." path segments: name the repository as the registry allows it').nullable().optional(),
  githubRepo: z.string().regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'owner/name').nullable().optional(),
  productionBranch: BranchName.optional(),
  stagingBranches: z.array(BranchName).max(20).optional(),
  stagingMode: z.enum(['update', 'fresh']).optional(),
  productionNeedsApproval: z.boolean().optional(),
  devUrlTemplate: z.string().regex(/^https?:\/\/\S+$/).nullable().optional(),
  /** A push to a staging branch also runs a build with tests (development branches always do). */
  buildStaging: z.boolean().optional(),
});
export type ProjectGit = z.infer<typeof ProjectGit>;
/** A project's git settings as the API returns them. */
export const ProjectGitSettings = z.object({
  repoUrl: z.string().nullable(),
  githubRepo: z.string().nullable(),
  productionBranch: z.string(),
  stagingBranches: z.array(z.string()),
  stagingMode: z.enum(['update', 'fresh']),
  productionNeedsApproval: z.boolean(),
  devUrlTemplate: z.string().nullable(),
  buildStaging: z.boolean(),
});
export type ProjectGitSettings = z.infer<typeof ProjectGitSettings>;

/** The newest masked clone of an environment, as a dev container pulls it. */
export const MaskedClone = z.object({
  backup: Backup,
  manifest: BackupManifest,
  /**
   * Where each part streams from. The dump and a tarball filestore: verify against the manifest's sha256.
   * An objects filestore is rebuilt as a tar on the fly: fetch `index` first (its sha256 is the
   * manifest's filestore.index.sha256), then check each file of the tar against it (SHA-1 and size).
   */
  parts: z.object({ dump: z.string(), filestore: z.string().nullable(), index: z.string().nullable().optional() }),
});
export type MaskedClone = z.infer<typeof MaskedClone>;
export const Approval = z.object({
  id: Uuid,
  environment: z.string(),
  kind: z.string(),
  params: z.record(z.string(), z.unknown()),
  reason: z.string().nullable(),
  status: z.enum(['pending', 'approved', 'rejected']),
  requestedBy: z.string(),
  decidedBy: z.string().nullable(),
  usedByRunId: z.number().nullable(),
});
export const AuditEntry = z.object({
  id: z.number(),
  at: z.string(),
  actor: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  details: z.unknown(),
});
export const Me = z.object({
  userId: Uuid,
  email: z.string().nullable(),
  role: z.string(),
  /** Instance admins create projects and grant the right to others (`odooops admin`). */
  instanceAdmin: z.boolean(),
  /** From the person's sign-in (null for a token the operator signed for a user id). */
  name: z.string().nullable().optional(),
  githubLogin: z.string().nullable().optional(),
});
export const Health = z.object({
  ok: z.literal(true),
  mode: z.enum(['embedded', 'external']),
  version: z.string(),
  /**
   * Where viewers subscribe to Realtime: a Supabase project's URL and anon key, or url null for this
   * server's own gateway (the API's base URL; any key).
   */
  realtime: z.object({ url: z.string().nullable(), apiKey: z.string() }),
  /**
   * How people sign in to this server. github: exchange a GitHub token (VS Code's GitHub account, or
   * the CLI's device flow with clientId at webUrl) at POST /api/auth/github for an OdooOps session.
   * supabase: a Supabase control plane whose Auth (GitHub provider, PKCE) issues the sessions.
   */
  auth: z.object({
    github: z.object({ clientId: z.string().nullable(), webUrl: z.string() }).nullable(),
    supabase: z.object({ url: z.string(), anonKey: z.string() }).nullable(),
  }),
});

/** A GitHub login, by GitHub's rules (what an invitation names). */
export const GitHubLogin = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/, 'a GitHub login: letters, digits and single dashes, up to 39');
/** A person as the server knows them from their sign-in. */
export const UserProfile = z.object({
  id: Uuid,
  name: z.string().nullable(),
  githubLogin: z.string().nullable(),
  email: z.string().nullable(),
});
export const GitHubSignIn = z.strictObject({ githubToken: z.string().min(1).max(500) });
export const RefreshRequest = z.strictObject({ refreshToken: z.string().min(1).max(500) });
/** An OdooOps session: a short-lived bearer token, and the refresh token that renews it (once: it rotates). */
export const AuthSession = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  /** When accessToken stops working (ISO 8601); refresh before. */
  expiresAt: z.string(),
  user: UserProfile,
  /** Projects this sign-in joined by accepting invitations. */
  joined: z.array(z.object({ project: z.string(), role: Role })),
});
/** POST /api/auth/accept (a Supabase control plane): who the Supabase user is here, and what they joined. */
export const AcceptedSignIn = z.object({
  user: UserProfile,
  joined: z.array(z.object({ project: z.string(), role: Role })),
});
export type AcceptedSignIn = z.infer<typeof AcceptedSignIn>;
export const InvitationInput = z
  .strictObject({ githubLogin: GitHubLogin.optional(), email: z.email().max(320).optional(), role: Role })
  .refine((i) => (i.githubLogin === undefined) !== (i.email === undefined), 'invite by githubLogin or by email (one of them)');
export const Invitation = z.object({
  id: Uuid,
  project: z.string(),
  githubLogin: z.string().nullable(),
  email: z.string().nullable(),
  role: Role,
  invitedBy: Uuid,
  createdAt: z.string(),
  expiresAt: z.string(),
  acceptedBy: Uuid.nullable(),
  acceptedAt: z.string().nullable(),
});
export type UserProfile = z.infer<typeof UserProfile>;
export type AuthSession = z.infer<typeof AuthSession>;
export type Invitation = z.infer<typeof Invitation>;
/** What an alert is about (ops.alerts.kind). */
export const ALERT_KINDS = ['backup_failed', 'backup_missed', 'verify_failed', 'store_filling'] as const;
export const AlertKind = z.enum(ALERT_KINDS);
export type AlertKind = z.infer<typeof AlertKind>;
/** What one channel answered when the worker delivered an alert; never its URL or a secret. */
export const AlertDelivery = z.object({
  channel: z.string(),
  kind: z.enum(['webhook', 'smtp']),
  ok: z.boolean(),
  attempts: z.number(),
  /** The webhook's HTTP status, or the SMTP server's reply code. */
  status: z.number().optional(),
  error: z.string().optional(),
  at: z.string(),
});
export type AlertDelivery = z.infer<typeof AlertDelivery>;
export const Alert = z.object({
  id: z.number(),
  project: z.string(),
  /** Null for an alert about the whole project (a backup store filling up). */
  environment: z.string().nullable(),
  kind: AlertKind,
  title: z.string(),
  message: z.string(),
  runId: z.number().nullable(),
  createdAt: z.string(),
  deliveries: z.array(AlertDelivery),
  /** Null while a worker still has to deliver it. */
  deliveredAt: z.string().nullable(),
});
export type Alert = z.infer<typeof Alert>;
/** An 'alert' message on the project's Realtime topic (project:<uuid>). */
export const AlertBroadcast = z.object({
  id: z.number(),
  project_id: z.string(),
  environment: z.string().nullable(),
  kind: AlertKind,
  title: z.string(),
  message: z.string(),
  run_id: z.number().nullable(),
  created_at: z.string(),
});
export type AlertBroadcast = z.infer<typeof AlertBroadcast>;
/**
 * PUT /api/projects/:p/alert-settings (admins): which of the registry's alert channels bound to the
 * project its alerts go to, and the addresses its SMTP channels mail.
 */
export const UpdateAlertSettings = z.strictObject({
  channels: z.array(InfraName).max(20).refine((c) => new Set(c).size === c.length, 'a channel is named once'),
  emails: z.array(z.email().max(320)).max(20, 'at most 20 addresses').default([]),
});
export type UpdateAlertSettings = z.input<typeof UpdateAlertSettings>;
export const AlertSettings = z.object({
  channels: z.array(z.string()),
  emails: z.array(z.string()),
  /** The channels the registry binds to the project, to choose from. */
  available: z.array(z.object({ name: z.string(), kind: z.enum(['webhook', 'smtp']), description: z.string() })),
});
export type AlertSettings = z.infer<typeof AlertSettings>;

export const ApiError = z.object({
  error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional(), details: z.unknown().optional() }),
});

export type Project = z.infer<typeof Project>;
export type Member = z.infer<typeof Member>;
export type Environment = z.infer<typeof Environment>;
export type DevEnvironment = z.infer<typeof DevEnvironment>;
export type Run = z.infer<typeof Run>;
export type LogLine = z.infer<typeof LogLine>;
export type LogPage = z.infer<typeof LogPage>;
export type LogBroadcast = z.infer<typeof LogBroadcast>;
export type Approval = z.infer<typeof Approval>;
export type AuditEntry = z.infer<typeof AuditEntry>;
export type Me = z.infer<typeof Me>;
export type Health = z.infer<typeof Health>;
export type ApiError = z.infer<typeof ApiError>;

/** What `odooops server` writes for the CLI and the extension to find a local server by themselves. */
export const LocalConnection = z.object({
  url: z.url(),
  token: z.string(),
  userId: Uuid,
  mode: z.enum(['embedded', 'external']),
  pid: z.number(),
});
export type LocalConnection = z.infer<typeof LocalConnection>;

/**
 * POST /api/projects/:p/environments/:e/imports (the body is the file itself, streamed): what was
 * uploaded and checked, and the import run queued for it, or, into production, the approval it needs
 * first (request one for `params`, then queue kind "import" with those params and the approval).
 */
export const ImportParams = z.strictObject({ upload: z.uuid(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
export type ImportParams = z.infer<typeof ImportParams>;
export const ImportUpload = z.object({
  upload: z.uuid(),
  sha256: z.string(),
  bytes: z.number(),
  format: z.enum(['odoo-zip', 'pg-dump', 'bundle']),
  odooVersion: z.string(),
  majorVersion: z.string(),
  sourceDatabase: z.string().nullable(),
  modules: z.number(),
  filestoreFiles: z.number(),
  params: ImportParams,
  run: Run.nullable(),
  approvalNeeded: z.boolean(),
});
export type ImportUpload = z.infer<typeof ImportUpload>;
export type TestFailure = z.infer<typeof TestFailure>;
export type TestSummary = z.infer<typeof TestSummary>;
export type BuildResult = z.infer<typeof BuildResult>;

/**
 * The running Odoo's own log (odoo.log) of an environment, followed live (issue 17). Levels as Odoo
 * writes them, lower-cased; a continuation line (a traceback) carries the level of the line it continues.
 */
export const ODOO_LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
export const OdooLogLevel = z.enum(ODOO_LOG_LEVELS);
export type OdooLogLevel = z.infer<typeof OdooLogLevel>;
/** Whether a line of `level` is shown under the filter `min` (that level and above). */
export const atLeastLevel = (level: OdooLogLevel, min: OdooLogLevel) => ODOO_LOG_LEVELS.indexOf(level) >= ODOO_LOG_LEVELS.indexOf(min);
/** A line of it: a run log's line (stream stderr for errors, so every viewer marks them) with its level. */
export const OdooLogLine = LogLine.extend({ level: OdooLogLevel });
export type OdooLogLine = z.infer<typeof OdooLogLine>;
/**
 * GET …/environments/:e/odoo-log?after=<seq> (the lines after a seq, to fill a gap) or ?tail=<n> (the
 * last n lines, of `level` and above when given). The server keeps a recent window: `firstSeq` is the
 * oldest line still kept, so a follower whose `after` is older than that knows what it cannot have.
 */
export const OdooLogQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  tail: z.coerce.number().int().min(0).max(5000).optional(),
  level: OdooLogLevel.optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});
export const OdooLogPage = z.object({
  environment: z.string(),
  lines: z.array(OdooLogLine),
  nextAfter: z.number(),
  /** The oldest seq kept (lines before it were trimmed), or null when nothing was ever stored. */
  firstSeq: z.number().nullable(),
});
export type OdooLogPage = z.infer<typeof OdooLogPage>;
/** POST …/environments/:e/odoo-log/follow: the lease the follower renews (at least every renewSeconds). */
export const OdooLogFollow = z.object({
  environmentId: Uuid,
  leaseSeconds: z.number(),
  renewSeconds: z.number(),
  lastSeq: z.number(),
  /** Why nothing will come, when the server can already tell (no runtime, no log path for an ssh one). */
  problem: z.string().nullable(),
});
export type OdooLogFollow = z.infer<typeof OdooLogFollow>;
/** A 'log' announcement on the private topic odoo-log:<environment id> (as LogBroadcast for runs). */
export const OdooLogBroadcast = z.object({
  environment_id: Uuid,
  first_seq: z.number(),
  last_seq: z.number(),
  partial: z.boolean().optional(),
  lines: z.array(OdooLogLine),
});
export type OdooLogBroadcast = z.infer<typeof OdooLogBroadcast>;

/**
 * The mail catcher (issue 17): mail a staging or development Odoo sent, kept per environment for the
 * members who may operate it. GET /api/projects/:p/environments/:e/mails (newest first; ?limit=0..200),
 * GET …/mails/:id (parsed), GET …/mails/:id/attachments/:index (a download, never shown inline).
 */
export const CaughtMail = z.object({
  id: z.number().int(),
  from: z.string(),
  to: z.string(),
  subject: z.string(),
  /** The Date header, when the mail had a valid one. */
  date: z.string().nullable(),
  receivedAt: z.string(),
  size: z.number().int(),
  attachments: z.number().int(),
});
export type CaughtMail = z.infer<typeof CaughtMail>;
export const CaughtMailList = z.object({
  environment: z.string(),
  /** How many the catcher holds for the environment (mails may list fewer: the limit). */
  total: z.number().int(),
  mails: z.array(CaughtMail),
});
export type CaughtMailList = z.infer<typeof CaughtMailList>;
export const CaughtMailPart = z.object({
  index: z.number().int(),
  filename: z.string(),
  contentType: z.string(),
  size: z.number().int(),
  /** An image the HTML shows itself (cid:); in the HTML as a data: URI already. */
  inline: z.boolean(),
});
export type CaughtMailPart = z.infer<typeof CaughtMailPart>;
export const CaughtMailDetail = CaughtMail.extend({
  envelopeFrom: z.string(),
  envelopeTo: z.array(z.string()),
  headers: z.array(z.object({ name: z.string(), value: z.string() })),
  text: z.string().nullable(),
  /** As sent (cid: images as data: URIs): show it only sandboxed, without scripts or remote loads. */
  html: z.string().nullable(),
  parts: z.array(CaughtMailPart),
});
export type CaughtMailDetail = z.infer<typeof CaughtMailDetail>;
/** On the project's Realtime topic (event 'mail'): a mail arrived; ids only, read it through the API. */
export const MailBroadcast = z.object({ environment: Uuid, id: z.number().int() });
export type MailBroadcast = z.infer<typeof MailBroadcast>;
/**
 * Shells on an environment (GET /api/shell, a websocket; SECURITY.md, "Shells"). The client chooses the
 * kind and the terminal's size, nothing else: what runs, where, as whom and with which environment comes
 * from the registry on the server. Text frames are these JSON messages; binary frames are the terminal's
 * bytes (client → server: input; server → client: output).
 */
export const SHELL_PATH = '/api/shell';
export const SHELL_KINDS = ['shell', 'psql', 'odoo'] as const;
export const ShellKind = z.enum(SHELL_KINDS);
export type ShellKind = z.infer<typeof ShellKind>;
const TermCols = z.number().int().min(1).max(1000);
const TermRows = z.number().int().min(1).max(500);
/** The first frame a client sends; strict: a command, path, host, user or environment variable is refused. */
export const ShellOpen = z.strictObject({
  type: z.literal('open'),
  token: z.string().min(1).max(16_384),
  project: ProjectSlug,
  environment: EnvironmentName,
  kind: ShellKind,
  cols: TermCols,
  rows: TermRows,
  /** Production only opens with this set: the person confirmed, naming the project and the environment. */
  confirmProduction: z.boolean().optional(),
});
export type ShellOpen = z.infer<typeof ShellOpen>;
export const ShellResize = z.strictObject({ type: z.literal('resize'), cols: TermCols, rows: TermRows });
export type ShellResize = z.infer<typeof ShellResize>;
/** What a client may send after the open frame, besides binary input. */
export const ShellClientFrame = z.discriminatedUnion('type', [ShellResize]);
export const ShellOpened = z.object({
  type: z.literal('opened'),
  session: z.number(),
  kind: ShellKind,
  project: z.string(),
  environment: z.string(),
  stage: Stage,
  /** Where it runs, for the terminal's first line: "odoo-bin shell of the runtime odoo17 on this worker". */
  where: z.string(),
  /** Sessions without input for this long are ended. */
  idleSeconds: z.number(),
  /** Production: what is typed is recorded. */
  recorded: z.boolean(),
});
export type ShellOpened = z.infer<typeof ShellOpened>;
/** The process ended (code null: killed by a signal, or by the server: idle, closed). */
export const ShellExit = z.object({ type: z.literal('exit'), code: z.number().nullable(), reason: z.string() });
export type ShellExit = z.infer<typeof ShellExit>;
export const SHELL_ERROR_CODES = ['bad_request', 'unauthorized', 'token_expired', 'forbidden', 'confirmation_required', 'not_found', 'too_many', 'unavailable', 'failed'] as const;
export const ShellError = z.object({ type: z.literal('error'), code: z.enum(SHELL_ERROR_CODES), message: z.string(), hint: z.string().optional() });
export type ShellError = z.infer<typeof ShellError>;
export const ShellServerFrame = z.discriminatedUnion('type', [ShellOpened, ShellExit, ShellError]);
export type ShellServerFrame = z.infer<typeof ShellServerFrame>;
/** One recorded session (project admins: GET /api/projects/:p/shell-sessions). */
export const ShellSession = z.object({
  id: z.number(),
  environment: z.string(),
  stage: Stage,
  userId: z.string(),
  kind: ShellKind,
  clientAddress: z.string().nullable(),
  confirmed: z.boolean(),
  openedAt: z.string(),
  closedAt: z.string().nullable(),
  exitCode: z.number().nullable(),
  endReason: z.string().nullable(),
  input: z.string().nullable(),
  inputTruncated: z.boolean(),
});
export type ShellSession = z.infer<typeof ShellSession>;
