// Run kinds are pluggable: an executor declares its kind, validates its params, and does the work.
import type { z } from 'zod';
import type { BackupManifest, LogStream } from '../../contract/index.ts';
import type { BackupStore } from '../storage/backup-store.ts';
import type { PgTarget } from '../odoo/pg-tools.ts';
import type { RepositoryAccess, RuntimeEntry } from '../infra/registry.ts';
import type { EnvironmentRow, ProjectRow } from '../rows.ts';

export type { EnvironmentRow, ProjectRow };

export interface BackupRow {
  id: string;
  project_id: string;
  environment_id: string;
  /** The stage of the environment the backup was taken of. */
  stage: string;
  kind: string;
  location: string;
  size_bytes: number;
  sha256: string;
  manifest: BackupManifest;
  /** The registry's names of the stores that hold all of it, the one it was written to first. */
  stores: string[];
  created_at: Date;
}

/** What a run may know and do about backups in the control plane, bound to the run's lease. */
export interface BackupCatalog {
  /** The project's backup store: where new backups are written. */
  store: BackupStore;
  /**
   * Where a backup is read from: the first of its stores that the registry resolves for the project and
   * that holds it; an error naming the stores when none does.
   */
  storeOf(b: BackupRow): Promise<BackupStore>;
  /** Every store that resolves and holds the backup, in its order (verify falls back along them). */
  storesOf(b: BackupRow): Promise<BackupStore[]>;
  /** Every store the backup's row names, resolved, and why the others cannot be used (a verify run reads them all). */
  namedStores(b: BackupRow): { stores: BackupStore[]; problems: string[] };
  /** The server's own directory (--backup-dir), where import uploads wait for their run. */
  uploads: BackupStore;
  manualToday(): Promise<number>;
  record(kind: string, key: string, size: number, sha256: string, manifest: BackupManifest): Promise<string>;
  /** A backup of this run's project, or an error that says it does not exist. */
  get(id: string): Promise<BackupRow>;
  /** This run's environment's backups, newest first. */
  list(): Promise<BackupRow[]>;
  /** Deletes a backup of this run's environment: its files in every store that holds it, then its row. */
  remove(b: BackupRow): Promise<void>;
  /**
   * Removes what killed backup writers left in this environment's part of the store (written parts,
   * .partial files, never recorded as a backup), except what a running or queued run may be writing;
   * returns the prefixes removed, and how many unfinished uploads (S3 multipart uploads, .partial files) it ended.
   */
  removeAbandoned(): Promise<{ prefixes: string[]; uploads: number }>;
  /** Every backup of this run's project (all environments), newest first: what the content sweep keeps. */
  projectBackups(): Promise<BackupRow[]>;
  /**
   * Holds the project's content lock in its store (and copy store) shared (a session advisory lock on the control
   * plane; a worker that dies releases it with its session): taken by a backup before it lists the
   * store's objects, released once its row is recorded. Waits while a sweep holds it. Returns the release.
   */
  holdContent(): Promise<() => Promise<void>>;
  /** The same lock of one store (the primary by default) exclusive, for a sweep, without waiting: null when a backup holds it. */
  tryContentSweep(store?: BackupStore): Promise<(() => Promise<void>) | null>;
  /** The project's store and its copy store (when it has one): where the sweep frees file objects. */
  configuredStores: BackupStore[];
}

export interface RunRow {
  id: number;
  project_id: string;
  environment_id: string;
  kind: string;
  params: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
  /** Who queued it, when it says: the scheduler's runs have keys of their own ("verify-sample:2026-W49:…"). */
  idempotency_key?: string | null;
}

/** The registry, bound to the run's project: a name the project may not use is refused with an InfraError. */
export interface RunInfra {
  /** The connection to an environment's database; its password is registered with redact(). */
  database(env: EnvironmentRow): PgTarget;
  /** The environment's filestore (<root>/<database>, checked), or null when it has none. */
  filestore(env: EnvironmentRow): string | null;
  /** How Odoo runs for the environment. */
  runtime(env: EnvironmentRow): RuntimeEntry;
  /** Whether the project may fetch a repository, and over which git transport. */
  repository(url: string): RepositoryAccess;
  /** The value of a registry secret bound to the project; registered with redact(). */
  secret(name: string): string;
  /** "<database> on <server>", for the log. */
  describe(env: EnvironmentRow): string;
}

export interface ExecutorContext<P> {
  run: RunRow;
  environment: EnvironmentRow;
  params: P;
  /** Adds a line to the run's log. Await it when printing a lot: it waits while the log buffer is full. */
  log(line: string, stream?: Exclude<LogStream, 'system'>): Promise<void>;
  /** Aborted when the run is cancelled, its lease is lost, or the worker shuts down. */
  signal: AbortSignal;
  /**
   * The operator's infrastructure as this run's project may use it (server/infra): every host, path,
   * binary and secret a run touches comes from here, never from the environment's row.
   */
  infra: RunInfra;
  /**
   * Registers a secret this run knows (a token, a generated password): the run's log shows [redacted]
   * in its place, in the log table and in the live broadcast. Values under 4 characters are ignored.
   * Register before logging anything that may contain it.
   */
  redact(value: string): void;
  backups: BackupCatalog;
  /** Another environment of the run's project, by name; without a name, the production environment. */
  otherEnvironment(name?: string): Promise<EnvironmentRow>;
  /** Whether a run is running now (so what it works on beside an environment is not a leftover). */
  runIsActive(id: number): Promise<boolean>;
  /** The run's project: its repository and branch rules. */
  project(): Promise<ProjectRow>;
  /** This worker's own directory (repository checkouts, Odoo processes it runs). */
  workDir: string;
  /**
   * Records how to log in to the clone this run made of its environment (ops.clone_logins, readable by
   * the members who may operate it): a fresh password, or the name of the secret that is the password.
   */
  recordCloneLogin(login: { logins: string[]; password: string | null; secret: string | null }): Promise<void>;
  /** Records the revision a deploy left running on the environment. */
  setDeployedRevision(revision: string): Promise<void>;
  /** Archives the run's (development) environment once its branch is gone; returns its new name. */
  archive(): Promise<string>;
  /** Commit statuses, deployments and comments on GitHub; null when the server has no GitHub token. */
  github: import('../github/feedback.ts').GitHubFeedback | null;
  /**
   * A new mail catcher login for the run's (staging or development) environment, replacing its previous
   * one, with where the catcher is reached; null when this worker knows no catcher. Refused for production.
   */
  issueMailLogin(): Promise<import('../mail/login.ts').MailLogin | null>;
}

export interface Executor<P = unknown> {
  kind: string;
  description: string;
  params: z.ZodType<P>;
  /** What it returns is stored as the run's result (JSON). A throw fails the run with its message. */
  execute(ctx: ExecutorContext<P>): Promise<unknown>;
}

export const defineExecutor = <P>(e: Executor<P>): Executor<P> => e;

/** A failure that still has a result (a build whose tests failed: its summary): the run fails, and keeps it. */
export class RunFailure extends Error {
  readonly result: unknown;
  constructor(message: string, result: unknown) {
    super(message);
    this.result = result;
  }
}
