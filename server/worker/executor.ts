// Run kinds are pluggable: an executor declares its kind, validates its params, and does the work.
import type { z } from 'zod';
import type { BackupManifest, LogStream } from '../../contract/index.ts';
import type { BackupStore } from '../odoo/backup-store.ts';

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
  created_at: Date;
}

/** What a run may know and do about backups in the control plane, bound to the run's lease. */
export interface BackupCatalog {
  store: BackupStore;
  manualToday(): Promise<number>;
  record(kind: string, key: string, size: number, sha256: string, manifest: BackupManifest): Promise<string>;
  /** A backup of this run's project, or an error that says it does not exist. */
  get(id: string): Promise<BackupRow>;
  /** This run's environment's backups, newest first. */
  list(): Promise<BackupRow[]>;
  /** Deletes a backup of this run's environment: its files, then its row. */
  remove(b: BackupRow): Promise<void>;
}

export interface EnvironmentRow {
  id: string;
  project_id: string;
  name: string;
  stage: string;
  branch: string | null;
  url: string | null;
  db_host: string | null;
  db_port: number | null;
  db_name: string;
  db_user: string | null;
  db_password_ref: string | null;
  filestore_path: string | null;
  deploy_target?: unknown;
  deployed_revision?: string | null;
}

export interface RunRow {
  id: number;
  project_id: string;
  environment_id: string;
  kind: string;
  params: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
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
   * Resolves a password reference (env:ODOOOPS_DB_* or file: in a secrets dir) on this worker. What it
   * returns is registered with redact() for this run.
   */
  resolveSecret(ref: string | null): string | undefined;
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
  /** Records the revision a deploy left running on the environment. */
  setDeployedRevision(revision: string): Promise<void>;
  /** Archives the run's (development) environment once its branch is gone; returns its new name. */
  archive(): Promise<string>;
  /** Commit statuses, deployments and comments on GitHub; null when the server has no GitHub token. */
  github: import('../github/feedback.ts').GitHubFeedback | null;
}

export interface ProjectRow {
  id: string;
  slug: string;
  repo_url: string | null;
  github_repo: string | null;
  production_branch: string;
  staging_branches: string[];
  staging_mode: 'update' | 'fresh';
  production_needs_approval: boolean;
  dev_url_template: string | null;
}

export interface Executor<P = unknown> {
  kind: string;
  description: string;
  params: z.ZodType<P>;
  /** What it returns is stored as the run's result (JSON). A throw fails the run with its message. */
  execute(ctx: ExecutorContext<P>): Promise<unknown>;
}

export const defineExecutor = <P>(e: Executor<P>): Executor<P> => e;
