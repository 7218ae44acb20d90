// The operator's infrastructure registry: the database servers (with where their passwords are), the
// filestore roots, the Odoo runtimes and the repositories a worker may use, and which projects may use
// each. It is a file on the worker's machine (YAML or JSON), written by whoever runs the server, never by
// an API user: projects only name its entries. This module is the one place that turns such a name into
// a host, a path, a binary or a secret, and it does so only for a project the entry is bound to
// (SECURITY.md).
import { readFileSync, existsSync, lstatSync, realpathSync, statSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DbIdentifier, InfraName, ProjectSlug, type InfraEntry, type InfraKind } from '../../contract/index.ts';
import { STRONG_SECRET_LENGTH } from '../worker/redact.ts';
import { LocalBackupStore, type BackupStore } from '../storage/backup-store.ts';
import { EncryptedStore, parseBackupKey } from '../storage/encryption.ts';
import { S3BackupStore } from '../storage/s3-store.ts';

const AbsolutePath = z.string().regex(/^\/[^\n\0]{0,3999}$/, 'an absolute path');
/** One entry of Odoo's --addons-path, which Odoo splits on commas. */
const AddonsDir = AbsolutePath.regex(/^[^,]*$/, 'one directory: Odoo splits --addons-path on commas, so no comma in it');
const Port = z.number().int().min(1).max(65535);
/** Which projects may use an entry: their slugs, or "*" for every project of this instance. */
const Projects = z.array(z.union([ProjectSlug, z.literal('*')])).min(1, 'bind the entry to at least one project (or "*")');
/** env:NAME (a variable of the worker's environment) or file:/path (a file on the worker's machine). */
export const SecretRef = z.string().regex(/^(env:[A-Za-z_][A-Za-z0-9_]{0,200}|file:\/[^\n\0]{1,3999})$/, 'env:VARIABLE or file:/absolute/path');
/** A glob over names or URLs: * matches any run of characters except "/", ** any run at all. */
const Glob = z.string().min(1).max(2000).regex(/^[^\s\0]+$/, 'no spaces');
const Description = z.string().max(500).optional();
const Arg = z.string().max(4000).regex(/^[^\n\0]*$/);

const DatabaseServer = z.strictObject({
  /** Host name, address or socket directory; libpq's default (the local socket) when omitted. */
  host: z.string().regex(/^[A-Za-z0-9._:/-]{1,255}$/, 'a host name, an address or a socket directory').optional(),
  port: Port.optional(),
  user: DbIdentifier.optional(),
  /** Where the worker finds the password; none: trust, peer or the run user's ~/.pgpass. */
  password: SecretRef.optional(),
  /** Database names projects may use on this server (globs); any name but the server's own by default. */
  databases: z.array(Glob).min(1).optional(),
  projects: Projects,
  description: Description,
});
const FilestoreRoot = z.strictObject({
  /** An environment's filestore is <path>/<its database name>, as Odoo lays out <data_dir>/filestore. */
  path: AbsolutePath,
  projects: Projects,
  description: Description,
});
const LocalRuntime = z.strictObject({
  kind: z.literal('local'),
  odooBin: AbsolutePath,
  /** Odoo's own addons directories; the environment's checkout of the project's repository goes first. */
  addonsPath: z.array(AddonsDir).max(50).default([]),
  /** The HTTP ports environments may listen on: [first, last]. */
  httpPorts: z.tuple([Port, Port]).refine(([a, b]) => a <= b, 'the first port must not be after the last'),
  /** Fixed extra arguments for odoo-bin (e.g. ["--workers", "2"]); never a database password. */
  odooArgs: z.array(Arg).max(50).default([]),
  healthTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
  /** The interpreter odoo-bin runs with (environments' virtual environments are made from it); odoo-bin's #! by default. */
  python: AbsolutePath.optional(),
  /** Where pip takes the repositories' requirements from; none: requirements.txt files are not installed. */
  pip: z.strictObject({
    indexUrl: z.url({ protocol: /^https?$/ }).optional(),
    extraIndexUrls: z.array(z.url({ protocol: /^https?$/ })).max(10).optional(),
    /** Directories of wheels on the worker (pip --find-links). */
    findLinks: z.array(AbsolutePath).max(10).optional(),
    /** Only findLinks, never an index. */
    noIndex: z.boolean().optional(),
    /** pip's cache (the run user writes it); none: no cache. */
    cacheDir: AbsolutePath.optional(),
  }).optional(),
  projects: Projects,
  description: Description,
  /**
   * Whether members may open shells (a terminal, psql, odoo-bin shell) on environments with this runtime:
   * each is a process as the run user (or the ssh user) that can do what Odoo can. Off unless the operator says.
   */
  shells: z.boolean().default(false),
});
const SshRuntime = z.strictObject({
  kind: z.literal('ssh'),
  host: z.string().regex(/^([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9.-]{1,253}$/, 'user@host'),
  port: Port.optional(),
  /** A private key on the worker's machine. */
  identityFile: AbsolutePath.optional(),
  checkoutDir: AbsolutePath,
  /** The checkout as Odoo sees it (inside a container, say); checkoutDir by default. */
  addonsPath: AddonsDir.optional(),
  /** Odoo's own addons directories on that host (as Odoo sees them), after the checkout in --addons-path. */
  odooAddonsPath: z.array(AddonsDir).max(50).default([]),
  odooBin: z.string().min(1).max(4000).regex(/^[^\n\0]+$/),
  odooArgs: z.array(Arg).max(50).default([]),
  restart: z.array(Arg).min(1).max(50),
  healthUrl: z.url({ protocol: /^https?$/ }),
  healthTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
  projects: Projects,
  description: Description,
  /**
   * Whether members may open shells (a terminal, psql, odoo-bin shell) on environments with this runtime:
   * each is a process as the run user (or the ssh user) that can do what Odoo can. Off unless the operator says.
   */
  shells: z.boolean().default(false),
  /**
   * Odoo's log file on that host (its --logfile), followed with `tail -F` while a member watches it
   * ("Show Odoo log", `odooops env logs --follow`). Without it the log of this runtime cannot be followed.
   */
  logPath: AbsolutePath.optional(),
});
const Runtime = z.discriminatedUnion('kind', [LocalRuntime, SshRuntime]);
const Repository = z.strictObject({
  /** The repository's URL, or a glob of URLs (https://github.com/acme/*). */
  url: Glob,
  projects: Projects,
  description: Description,
});

/**
 * A secret the operator makes available to projects by name (a project's clone password). Only its
 * name and bindings leave the worker's machine; the value is read on the worker, when a run needs it.
 */
const Secret = z.strictObject({
  value: SecretRef,
  projects: Projects,
  description: Description,
});

/** The name of the built-in store: the server's own directory (--backup-dir), bound to every project. */
export const DEFAULT_BACKUP_STORE = 'default';
const MAKE_KEY = 'openssl rand -base64 32 > /etc/odooops/backup.key; chmod 600 /etc/odooops/backup.key';

/**
 * Plain http only to this machine or a private network (a MinIO beside the worker): anywhere else the
 * backups (unless encrypted) and the signed requests cross networks in clear text, open to be read or
 * replayed on the way.
 */
const PRIVATE = new BlockList();
for (const [net, bits] of [['127.0.0.0', 8], ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) PRIVATE.addSubnet(net, bits, 'ipv4');
PRIVATE.addAddress('::1', 'ipv6');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
export function plainHttpAllowed(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  const v = isIP(host);
  return v !== 0 && PRIVATE.check(host, v === 4 ? 'ipv4' : 'ipv6');
}
const S3Endpoint = z.url({ protocol: /^https?$/ }).refine((u) => u.startsWith('https:') || plainHttpAllowed(u),
  'https:// (http:// only for a loopback or private address, such as a MinIO on this network: elsewhere the backups and the signed requests would cross networks in clear text)');

const LocalStore = z.strictObject({
  kind: z.literal('local'),
  /** A directory on the worker's machine (a mounted volume, an NFS share several workers see). */
  path: AbsolutePath,
  /** A key (base64, 32 bytes) the objects are encrypted with; none: plain files. */
  encryptionKey: SecretRef.optional(),
  /** For "store filling up" alerts. */
  quotaGb: z.number().positive().optional(),
  projects: Projects,
  description: Description,
});
const S3Store = z.strictObject({
  kind: z.literal('s3'),
  /** The service's endpoint (R2, B2, MinIO, Supabase Storage); AWS's own when omitted. */
  endpoint: S3Endpoint.optional(),
  region: z.string().regex(/^[a-z0-9-]{1,64}$/, 'a region name (us-east-1; "auto" for R2)'),
  bucket: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/, 'a bucket name'),
  /** A folder of the bucket the store keeps to (several stores, or several instances, in one bucket). */
  prefix: z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/?$/, 'a key prefix: folder names separated by "/"').optional(),
  /** Path-style URLs (MinIO, most self-hosted services). */
  forcePathStyle: z.boolean().optional(),
  accessKeyId: SecretRef,
  secretAccessKey: SecretRef,
  /** Ask the service to check the parts' checksums (off for services that lack them). */
  checksums: z.boolean().optional(),
  /** For "store filling up" alerts. */
  quotaGb: z.number().positive().optional(),
  encryptionKey: SecretRef.optional(),
  /** Turns off the encryption off-site stores have by default: whoever reads the bucket reads the backups. */
  encryption: z.literal('none').optional(),
  projects: Projects,
  description: Description,
}).superRefine((e, ctx) => {
  if (!e.encryptionKey && e.encryption !== 'none') {
    ctx.addIssue({
      code: 'custom', path: ['encryptionKey'],
      message: `an off-site store is encrypted unless you say otherwise: make a key (${MAKE_KEY}), keep a copy of it away from the backups ` +
        '(losing it is losing the backups) and set encryptionKey: file:/etc/odooops/backup.key; or write encryption: none to store backups readable by whoever reads the bucket',
    });
  }
  if (e.encryptionKey && e.encryption === 'none') ctx.addIssue({ code: 'custom', path: ['encryption'], message: 'give encryptionKey or encryption: none, not both' });
});
const BackupStoreEntry = z.discriminatedUnion('kind', [LocalStore, S3Store]);
/** Loopback hosts, the only ones a webhook may reach over plain http (a relay on the worker's machine). */
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;
/**
 * Where a project's alerts may go: a webhook (an HTTPS URL; the body signed with HMAC-SHA256 when it has
 * a secret) or an SMTP server. Only the operator names URLs and mail servers (SECURITY.md, "Alert
 * channels"); a project admin picks among the channels bound to the project.
 */
const WebhookChannel = z.strictObject({
  kind: z.literal('webhook'),
  url: z.url({ protocol: /^https?$/ }).max(2000)
    .refine((u) => { const x = new URL(u); return x.protocol === 'https:' || LOOPBACK_HOST.test(x.hostname); }, 'https (plain http only to the loopback: localhost, 127.0.0.1, [::1])'),
  /** The key of the X-OdooOps-Signature header (sha256=<hex HMAC of the body>), as GitHub signs its webhooks. */
  secret: SecretRef.optional(),
  projects: Projects,
  description: Description,
});
const SmtpChannel = z.strictObject({
  kind: z.literal('smtp'),
  host: z.string().regex(/^[A-Za-z0-9.:-]{1,255}$/, 'a host name or an address'),
  port: Port,
  /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
  secure: z.boolean().optional(),
  user: z.string().min(1).max(320).regex(/^[^\n\0]+$/).optional(),
  password: SecretRef.optional(),
  from: z.string().min(3).max(320).regex(/^[^\n\r\0]+$/),
  projects: Projects,
  description: Description,
});
const AlertChannel = z.discriminatedUnion('kind', [WebhookChannel, SmtpChannel]);
const SmtpHost = z.string().regex(/^[A-Za-z0-9.:-]{1,255}$/, 'a host name or an address');
/**
 * The mail catcher: the server's SMTP endpoint that staging and development Odoo send their mail to
 * (server/mail/catcher.ts). It listens on host:port (the loopback, and by default the port it had at its
 * last start, else a free one: Odoo on this machine reaches it, nothing else); reachAs is the address the environments' Odoo connect to when
 * that differs (a container, another machine), and what a worker of its own (odooops worker) writes into
 * the clones it neutralizes. Retention and limits are per environment.
 */
const MailCatcher = z.strictObject({
  enabled: z.boolean().default(true),
  host: SmtpHost.default('127.0.0.1'),
  port: Port.optional(),
  reachAs: z.strictObject({ host: SmtpHost, port: Port.optional() }).optional(),
  maxMessageMb: z.number().positive().max(100).default(10),
  maxRecipients: z.number().int().min(1).max(1000).default(50),
  messagesPerMinute: z.number().int().min(1).max(100_000).default(60),
  keepDays: z.number().int().min(1).max(365).default(7),
  keepMails: z.number().int().min(1).max(100_000).default(500),
  keepMb: z.number().int().min(1).max(100_000).default(200),
});
export type MailCatcherSettings = z.infer<typeof MailCatcher>;
export type AlertChannelEntry = z.infer<typeof AlertChannel>;
/** A channel with its secrets read, for the worker that delivers. */
export type ResolvedAlertChannel =
  | { name: string; kind: 'webhook'; url: string; secret?: string }
  | { name: string; kind: 'smtp'; host: string; port: number; secure: boolean; user?: string; password?: string; from: string };

export const RegistryFile = z.strictObject({
  databaseServers: z.record(InfraName, DatabaseServer).default({}),
  filestoreRoots: z.record(InfraName, FilestoreRoot).default({}),
  runtimes: z.record(InfraName, Runtime).default({}),
  repositories: z.record(InfraName, Repository).default({}),
  secrets: z.record(InfraName, Secret).default({}),
  backupStores: z.record(InfraName, BackupStoreEntry).default({}),
  alertChannels: z.record(InfraName, AlertChannel).default({}),
  mailCatcher: MailCatcher.optional(),
});
export type BackupStoreEntry = z.infer<typeof BackupStoreEntry>;
export type RegistryFile = z.infer<typeof RegistryFile>;
export type DatabaseServerEntry = z.infer<typeof DatabaseServer>;
export type FilestoreRootEntry = z.infer<typeof FilestoreRoot>;
export type LocalRuntime = z.infer<typeof LocalRuntime>;
export type SshRuntime = z.infer<typeof SshRuntime>;
export type RuntimeEntry = z.infer<typeof Runtime>;

/** A database server the server itself provides (the demo's, in the embedded cluster): its password is known in memory. */
export interface BuiltinDatabaseServer extends Omit<DatabaseServerEntry, 'password'> {
  password?: string;
}
export interface Builtins {
  databaseServers?: Record<string, BuiltinDatabaseServer>;
  filestoreRoots?: Record<string, FilestoreRootEntry>;
  /** The server's own backup directory (--backup-dir): the store "default". */
  backupDir?: string;
  /** Where this server's mail catcher listens, once it does (its worker points clones there). */
  mailCatcher?: { host: string; port: number };
}

/** A refusal the run's log and the API can show: it names registry entries, never paths or secrets. */
export class InfraError extends Error {}

/** How a worker reaches a database server for a project. */
export interface ResolvedDatabase {
  server: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database: string;
}

/** Which git transports a fetch of an allowed repository may use (git's protocol.allow). */
export interface RepositoryAccess {
  entry: string;
  protocols: string[];
}

const SERVER_OWN = /^(postgres|template[01])$/i;

/** A glob as an anchored regular expression (also stored in the control plane for the API's checks). */
export function globRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else out += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return `^${out}$`;
}

/** git's name for the transport a URL uses (what protocol.<name>.allow calls it). */
export function gitProtocolOf(url: string): string {
  // <transport>::<address> (git's remote helpers: ext::, fd::, …)
  const helper = /^([a-z][a-z0-9+.-]*)::/i.exec(url)?.[1]?.toLowerCase();
  if (helper) return helper;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme) return scheme;
  if (url.startsWith('/') || url.startsWith('./') || url.startsWith('../')) return 'file';
  // scp-like: [user@]host:path (a colon before any slash)
  if (/^[^/]*:/.test(url)) return 'ssh';
  return 'file';
}

const boundTo = (projects: string[], slug: string) => projects.includes('*') || projects.includes(slug);

export class Infrastructure {
  readonly file: RegistryFile;
  /** Where it was read from (for the operator's messages); null for one built in code. */
  readonly source: string | null;
  readonly sha256: string;
  private readonly builtins: Builtins;

  constructor(file: RegistryFile, source: string | null, builtins: Builtins = {}) {
    this.file = file;
    this.source = source;
    this.builtins = builtins;
    this.sha256 = createHash('sha256').update(JSON.stringify([file, Object.keys(builtins.databaseServers ?? {}), builtins.filestoreRoots ?? {}, ...(builtins.backupDir ? ['default-store'] : [])])).digest('hex');
    for (const name of Object.keys(builtins.databaseServers ?? {})) {
      if (file.databaseServers[name]) throw new InfraError(`the registry declares a database server named "${name}", which OdooOps provides itself; rename it`);
    }
    for (const name of Object.keys(builtins.filestoreRoots ?? {})) {
      if (file.filestoreRoots[name]) throw new InfraError(`the registry declares a filestore root named "${name}", which OdooOps provides itself; rename it`);
    }
    if (file.backupStores[DEFAULT_BACKUP_STORE]) {
      throw new InfraError(`the registry declares a backup store named "${DEFAULT_BACKUP_STORE}", which OdooOps provides itself (the server's --backup-dir); rename it`);
    }
  }

  /** Reads and checks a registry file; a missing file is an empty registry. Errors name the offending key. */
  static load(path: string | null, builtins: Builtins = {}): Infrastructure {
    if (!path || !existsSync(path)) return new Infrastructure(RegistryFile.parse({}), path, builtins);
    let raw: unknown;
    try {
      // YAML is a superset of JSON: one parser takes both.
      raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
    } catch (err) {
      throw new InfraError(`the infrastructure registry ${path} is not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
    }
    const r = RegistryFile.safeParse(raw);
    if (!r.success) {
      throw new InfraError(`the infrastructure registry ${path} is invalid: ${r.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`);
    }
    const infra = new Infrastructure(r.data, path, builtins);
    infra.warnings = infra.shortPasswords();
    return infra;
  }

  /**
   * What is wrong with entries that the registry still loads with: the server starts and every other
   * entry keeps working (a registry refused as a whole would stop every project's runs over one
   * password), runs on such an entry fail, and `odooops infra check` exits 2.
   */
  warnings: string[] = [];

  /**
   * A database server's password, as far as this machine can read it, shorter than
   * STRONG_SECRET_LENGTH (one it cannot read is checked by the worker that resolves it).
   */
  private shortPasswords(): string[] {
    const short: string[] = [];
    for (const [name, e] of Object.entries(this.file.databaseServers)) {
      if (!e.password) continue;
      let value: string | undefined;
      try {
        value = resolveSecret(e.password, `the password of database server "${name}"`);
      } catch {
        continue;
      }
      if (value !== undefined && value.length < STRONG_SECRET_LENGTH) short.push(`"${name}" (${e.password})`);
    }
    // Only the operator reads this (server start, SIGHUP, odooops infra check): where the secret is helps.
    return short.length ? [`${this.source ?? 'the registry'}: ${shortPasswordMessage(short)}; runs on ${short.length > 1 ? 'these servers' : 'this server'} fail until then`] : [];
  }

  private databaseServerEntry(name: string): (BuiltinDatabaseServer | DatabaseServerEntry) | undefined {
    return this.builtins.databaseServers?.[name] ?? this.file.databaseServers[name];
  }

  private filestoreRootEntry(name: string): FilestoreRootEntry | undefined {
    return this.builtins.filestoreRoots?.[name] ?? this.file.filestoreRoots[name];
  }

  private refuse(kind: string, name: string, slug: string, exists: boolean): never {
    throw new InfraError(exists
      ? `the ${kind} "${name}" of the registry is not bound to project ${slug}; the operator binds it (projects: [${slug}]) in the registry`
      : `this worker's registry has no ${kind} "${name}"; the operator declares it in the registry (odooops infra list shows what exists)`);
  }

  /** The connection to a database of a server bound to the project; the password is resolved here. */
  database(serverName: string | null, database: string, slug: string): ResolvedDatabase {
    if (!serverName) throw new InfraError('this environment names no database server; an admin sets one: odooops env set PROJECT ENV --db-server NAME');
    const entry = this.databaseServerEntry(serverName);
    if (!entry || !boundTo(entry.projects, slug)) this.refuse('database server', serverName, slug, !!entry);
    if (!databaseAllowed(entry, database)) {
      throw new InfraError(`the database "${database}" is not one project ${slug} may use on the server "${serverName}" (the registry allows ${entry.databases?.join(', ') ?? 'any but the server\'s own'})`);
    }
    const builtin = this.builtins.databaseServers?.[serverName];
    const password = builtin ? builtin.password : resolveSecret((entry as DatabaseServerEntry).password, `the password of database server "${serverName}"`);
    if (!builtin && password !== undefined && password.length < STRONG_SECRET_LENGTH) {
      // A run's log shows this: the server's name, not where its secret is.
      throw new InfraError(shortPasswordMessage([`"${serverName}"`]));
    }
    return { server: serverName, host: entry.host, port: entry.port, user: entry.user, password, database };
  }

  /**
   * The environment's filestore directory, <root>/<database>, with the root's symbolic links resolved;
   * refuses a filestore that is itself a symbolic link (it could lead out of the root, or into another
   * environment's files). Null when the environment has no filestore root.
   */
  filestore(rootName: string | null, database: string, slug: string): string | null {
    if (!rootName) return null;
    const entry = this.filestoreRootEntry(rootName);
    if (!entry || !boundTo(entry.projects, slug)) this.refuse('filestore root', rootName, slug, !!entry);
    return filestoreIn(entry.path, rootName, database);
  }

  runtime(name: string | null, slug: string): RuntimeEntry {
    if (!name) throw new InfraError('this environment has no runtime to deploy with; an admin sets one: odooops env deploy-target PROJECT ENV --runtime NAME');
    const entry = this.file.runtimes[name];
    if (!entry || !boundTo(entry.projects, slug)) this.refuse('runtime', name, slug, !!entry);
    return entry;
  }

  /** The value of a secret bound to the project (read here, on the worker, each time). */
  secret(name: string, slug: string): string {
    const entry = this.file.secrets[name];
    if (!entry || !boundTo(entry.projects, slug)) this.refuse('secret', name, slug, !!entry);
    return resolveSecret(entry.value, `the secret "${name}"`)!;
  }

  /** An alert channel bound to the project, its secret or password read here, on the worker. */
  alertChannel(name: string, slug: string): ResolvedAlertChannel {
    const entry = this.file.alertChannels[name];
    if (!entry || !boundTo(entry.projects, slug)) this.refuse('alert channel', name, slug, !!entry);
    if (entry.kind === 'webhook') {
      return { name, kind: 'webhook', url: entry.url, secret: resolveSecret(entry.secret, `the secret of alert channel "${name}"`) };
    }
    return {
      name, kind: 'smtp', host: entry.host, port: entry.port, secure: entry.secure ?? entry.port === 465, user: entry.user,
      password: resolveSecret(entry.password, `the password of alert channel "${name}"`), from: entry.from,
    };
  }

  /** Whether the project may fetch from a repository URL, and over which transport. */
  repository(url: string, slug: string): RepositoryAccess {
    // A pattern such as /srv/git/** must not reach a sibling through "..".
    if (/(^|[/:])\.\.?(\/|$)/.test(url)) throw new InfraError(`the repository ${url} has "." or ".." path segments; name it as the registry allows it`);
    for (const [name, entry] of Object.entries(this.file.repositories)) {
      if (boundTo(entry.projects, slug) && new RegExp(globRegex(entry.url)).test(url)) return { entry: name, protocols: [gitProtocolOf(url)] };
    }
    throw new InfraError(`the repository ${url} is not allowed for project ${slug}: the operator allows repositories (URLs or patterns) in the registry`);
  }

  private readonly stores = new Map<string, { store: BackupStore; secrets: string[] }>();

  /**
   * A backup store bound to the project, its credentials and key read here (on the worker), wrapped in
   * EncryptedStore when it has a key; one instance per name. onSecret gets every secret it was made
   * with (each call: a run's log redacts them).
   */
  backupStore(name: string, slug: string, onSecret?: (value: string) => void): BackupStore {
    if (name !== DEFAULT_BACKUP_STORE) {
      const entry = this.file.backupStores[name];
      if (!entry || !boundTo(entry.projects, slug)) this.refuse('backup store', name, slug, !!entry);
    }
    let made = this.stores.get(name);
    if (!made) {
      made = this.makeStore(name);
      this.stores.set(name, made);
    }
    for (const s of made.secrets) onSecret?.(s);
    return made.store;
  }

  private makeStore(name: string): { store: BackupStore; secrets: string[] } {
    if (name === DEFAULT_BACKUP_STORE) {
      if (!this.builtins.backupDir) throw new InfraError(`this worker has no backup directory (the built-in store "${DEFAULT_BACKUP_STORE}")`);
      return { store: new LocalBackupStore(this.builtins.backupDir, DEFAULT_BACKUP_STORE), secrets: [] };
    }
    const e = this.file.backupStores[name]!;
    const secrets: string[] = [];
    const read = (ref: string, what: string) => {
      const v = resolveSecret(ref, `the ${what} of backup store "${name}"`)!;
      secrets.push(v);
      return v;
    };
    let store: BackupStore;
    if (e.kind === 'local') store = new LocalBackupStore(e.path, name);
    else {
      store = new S3BackupStore({
        name, endpoint: e.endpoint, region: e.region, bucket: e.bucket, prefix: e.prefix, forcePathStyle: e.forcePathStyle,
        accessKeyId: read(e.accessKeyId, 'access key id'), secretAccessKey: read(e.secretAccessKey, 'secret access key'), checksums: e.checksums,
      });
    }
    if (e.encryptionKey) {
      const text = read(e.encryptionKey, 'encryption key');
      try {
        store = new EncryptedStore(store, parseBackupKey(text, `the encryption key of backup store "${name}"`));
      } catch (err) {
        throw new InfraError((err as Error).message);
      }
    }
    return { store, secrets };
  }

  /** Every store this machine can resolve, with its quota: what the scheduler watches for filling up. */
  watchedBackupStores(log: (m: string) => void = () => {}): { store: BackupStore; quotaGb?: number }[] {
    const out: { store: BackupStore; quotaGb?: number }[] = [];
    for (const name of [...(this.builtins.backupDir ? [DEFAULT_BACKUP_STORE] : []), ...Object.keys(this.file.backupStores)]) {
      try {
        let made = this.stores.get(name);
        if (!made) this.stores.set(name, (made = this.makeStore(name)));
        const e = this.file.backupStores[name];
        // A local store is watched by its disk (statfs), which the encrypting wrapper does not offer.
        out.push({ store: e?.kind === 'local' && e.encryptionKey ? new LocalBackupStore(e.path, name) : made.store, quotaGb: e?.quotaGb });
      } catch (err) {
        log(`backup store "${name}": ${(err as Error).message}`);
      }
    }
    return out;
  }

  /**
   * Whether each declared store can be used from this machine (odooops infra check): its credentials
   * and key resolve, and an object can be written and deleted (a local store's directory must exist).
   */
  async checkBackupStores(timeoutMs = 20_000): Promise<{ name: string; problem: string | null }[]> {
    const out: { name: string; problem: string | null }[] = [];
    for (const [name, e] of Object.entries(this.file.backupStores)) {
      try {
        if (e.kind === 'local' && !(existsSync(e.path) && statSync(e.path).isDirectory())) throw new Error(`the directory ${e.path} does not exist; create it (writable by the server)`);
        const { store } = this.makeStore(name);
        const probe = `.odooops-probe/${randomBytes(8).toString('hex')}`;
        const signal = AbortSignal.timeout(timeoutMs);
        await store.put(probe, Readable.from([Buffer.from('odooops infra check\n')]), signal);
        if (!(await store.exists(probe))) throw new Error('an object written there is not found again');
        await store.delete(probe);
        out.push({ name, problem: null });
      } catch (err) {
        out.push({ name, problem: (err as Error).message.split('\n')[0] || String(err) });
      }
    }
    return out;
  }

  /** Every entry with what the API may show of it (no host of a secret, no secret). */
  entries(): InfraEntry[] {
    const out: InfraEntry[] = [];
    const servers = { ...this.file.databaseServers, ...(this.builtins.databaseServers ?? {}) } as Record<string, DatabaseServerEntry | BuiltinDatabaseServer>;
    for (const [name, e] of Object.entries(servers)) {
      out.push({
        kind: 'database_server', name, projects: e.projects,
        description: e.description ?? `PostgreSQL ${e.user ? `${e.user}@` : ''}${e.host ?? 'local socket'}${e.port ? `:${e.port}` : ''}`,
        details: { databases: (e.databases ?? ['*']).map(globRegex) },
      });
    }
    for (const [name, e] of Object.entries({ ...this.file.filestoreRoots, ...(this.builtins.filestoreRoots ?? {}) })) {
      out.push({ kind: 'filestore_root', name, projects: e.projects, description: e.description ?? 'a filestore root on the worker', details: {} });
    }
    for (const [name, e] of Object.entries(this.file.runtimes)) {
      out.push(e.kind === 'local'
        ? { kind: 'runtime', name, projects: e.projects, description: e.description ?? `odoo-bin on the worker, ports ${e.httpPorts[0]}-${e.httpPorts[1]}`, details: { kind: 'local', httpPorts: e.httpPorts } }
        : { kind: 'runtime', name, projects: e.projects, description: e.description ?? `Odoo on ${e.host} over ssh`, details: { kind: 'ssh', ...(e.logPath ? { followsLog: true } : {}) } });
    }
    for (const [name, e] of Object.entries(this.file.repositories)) {
      out.push({ kind: 'repository', name, projects: e.projects, description: e.description ?? e.url, details: { url: e.url, regex: globRegex(e.url) } });
    }
    for (const [name, e] of Object.entries(this.file.secrets)) {
      // Neither the value nor where it is (an env:/file: reference names the operator's machine).
      out.push({ kind: 'secret', name, projects: e.projects, description: e.description ?? 'a secret on the worker', details: {} });
    }
    if (this.builtins.backupDir) {
      out.push({ kind: 'backup_store', name: DEFAULT_BACKUP_STORE, projects: ['*'], description: 'the server\'s own backup directory', details: { kind: 'local', encrypted: false, offsite: false } });
    }
    for (const [name, e] of Object.entries(this.file.backupStores)) {
      // Never the endpoint, bucket, path or credentials: which kind, and whether it is encrypted and off this machine.
      const encrypted = !!e.encryptionKey;
      out.push({
        kind: 'backup_store', name, projects: e.projects,
        description: e.description ?? (e.kind === 'local' ? 'a directory on the worker' : 'S3-compatible object storage') + (encrypted ? ', encrypted' : ''),
        details: { kind: e.kind, encrypted, offsite: e.kind === 's3' },
      });
    }
    for (const [name, e] of Object.entries(this.file.alertChannels)) {
      // Neither the URL (a webhook's path is often its credential) nor the mail server's address.
      out.push({ kind: 'alert_channel', name, projects: e.projects, description: e.description ?? (e.kind === 'webhook' ? 'a webhook' : 'email through an SMTP server'), details: { kind: e.kind } });
    }
    return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  }

  /** The paths the operator declared, for the log's path aliases (a run's log shows names, not paths). */
  paths(): [string, string][] {
    const roots = { ...this.file.filestoreRoots, ...(this.builtins.filestoreRoots ?? {}) };
    return [
      ...Object.entries(roots).map(([name, e]) => [e.path.replace(/\/+$/, ''), `<filestore root ${name}>`] as [string, string]),
      ...Object.entries(this.file.backupStores).flatMap(([name, e]) => (e.kind === 'local' ? [[e.path.replace(/\/+$/, ''), `<backup store ${name}>`] as [string, string]] : [])),
      ...(this.builtins.backupDir ? [[resolve(this.builtins.backupDir), '<backups>'] as [string, string]] : []),
    ];
  }

  /** The mail catcher's settings, defaults filled in. */
  mailCatcherSettings(): MailCatcherSettings {
    return this.file.mailCatcher ?? MailCatcher.parse({});
  }

  /**
   * Where neutralized Odoo sends its mail: reachAs, else the address this server's catcher listens on,
   * else host:port when the registry fixes the port (a worker of its own); null without a catcher.
   */
  mailCatcherAddress(): { host: string; port: number } | null {
    const s = this.mailCatcherSettings();
    if (!s.enabled) return null;
    const listening = this.builtins.mailCatcher;
    const port = s.reachAs?.port ?? s.port ?? listening?.port;
    if (s.reachAs) return port ? { host: s.reachAs.host, port } : null;
    if (listening) return listening;
    return s.port ? { host: s.host, port: s.port } : null;
  }

  has(kind: InfraKind, name: string): boolean {
    return this.entries().some((e) => e.kind === kind && e.name === name);
  }
}

function databaseAllowed(entry: { databases?: string[] }, database: string): boolean {
  if (SERVER_OWN.test(database) || database.includes('_odooops_')) return false;
  return (entry.databases ?? ['*']).some((g) => new RegExp(globRegex(g)).test(database));
}

/** <root>/<database>, inside the root's real path, and not a symbolic link itself. */
export function filestoreIn(rootPath: string, rootName: string, database: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/.test(database)) throw new InfraError(`"${database}" cannot name a filestore directory`);
  let root: string;
  try {
    root = realpathSync(rootPath);
  } catch {
    throw new InfraError(`the filestore root "${rootName}" does not exist on this worker; the operator creates it`);
  }
  const dir = join(root, database);
  let isLink = false;
  try {
    isLink = lstatSync(dir).isSymbolicLink();
  } catch {
    return dir; // not there yet: a restore creates it
  }
  if (isLink) {
    throw new InfraError(`the filestore ${database} in the root "${rootName}" is a symbolic link; OdooOps only acts on real directories inside a registered root (remove the link)`);
  }
  return dir;
}

/**
 * Why a short database password is refused, and what to do (SECURITY.md, "Short passwords"). Never
 * the password, nor its length.
 */
function shortPasswordMessage(servers: string[]): string {
  return `the password of the database server${servers.length > 1 ? 's' : ''} ${servers.join(', ')} ${servers.length > 1 ? 'are' : 'is'} shorter than ${STRONG_SECRET_LENGTH} characters, ` +
    `too short for run logs to hide (a short password is also part of ordinary words, so hiding it there would tell what it is) and easy to guess; ` +
    `give the role a random password of at least ${STRONG_SECRET_LENGTH} characters (ALTER ROLE … PASSWORD '…'; openssl rand -base64 18 makes one), put it where the registry points, and run odooops infra check`;
}

/**
 * Reads a secret the registry points at (the operator wrote the reference, so any variable or file is
 * fine); `what` names it in errors ("the password of database server \"x\"").
 */
export function resolveSecret(ref: string | undefined, what: string): string | undefined {
  if (!ref) return undefined;
  if (ref.startsWith('env:')) {
    const value = process.env[ref.slice(4)];
    if (value === undefined) throw new InfraError(`${what} is not available on this worker (the registry names an environment variable that is not set)`);
    return value;
  }
  try {
    return readFileSync(ref.slice(5), 'utf8').trim();
  } catch {
    throw new InfraError(`${what} is not available on this worker (the registry names a file it cannot read)`);
  }
}
