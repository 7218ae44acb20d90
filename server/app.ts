// `odooops server`: the control-plane database (embedded by default), migrations, the HTTP API and
// the worker in one process.
import { resolveStores, type BackupStores } from './storage/store-of.ts';
import { Scheduler } from './worker/scheduler.ts';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { LocalConnection, type Health } from '../contract/index.ts';
import { createApiServer } from './api/http.ts';
import { DEFAULT_IMPORT_LIMITS } from './api/import-upload.ts';
import { hsVerifier, jwksVerifier, localIdentity, signToken, withLocalTokens, type TokenVerifier } from './auth/tokens.ts';
import { DEFAULT_SESSION_TTL_SECONDS, sessionVerifier } from './auth/sessions.ts';
import { VSCODE_GITHUB_CLIENT_ID } from './auth/github-identity.ts';
import { SignIn } from './api/sign-in.ts';
import { startEmbedded, type EmbeddedCluster } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { assertSessionConnection } from './db/session-check.ts';
import { createPool } from './db/session.ts';
import { homeFiles, odooopsHome, sharedDir } from './paths.ts';
import { loadExecutors } from './worker/executors/index.ts';
import { Worker } from './worker/worker.ts';
import { DEMO_SLUG, demoInfrastructure, queueDemoClone, seedDemo } from './demo.ts';
import { DEFAULT_BACKUP_STORE, Infrastructure, type Builtins } from './infra/registry.ts';
import { ensureInstanceAdmin, publishInfrastructure } from './infra/publish.ts';
import { writeUpgradeSuggestion } from './infra/upgrade.ts';
import { giveToRunUser, setupRunUser, shareWithRunUser } from './infra/run-user.ts';
import { RealtimeGateway } from './realtime/gateway.ts';
import { ShellGateway } from './shell/gateway.ts';
import { SHELL_PATH } from '../contract/index.ts';
import { GitHubFeedback } from './github/feedback.ts';
import { hostname, userInfo } from 'node:os';
import { reachableAddress, startMailCatcher, type MailCatcher } from './mail/catcher.ts';
import { join } from 'node:path';

export const VERSION = '0.1.0';

/** The OS account the server runs as (its operator), or "the server" where there is none (a container's uid). */
function operatorAccount(): string {
  try {
    return userInfo().username.slice(0, 100) || 'the server';
  } catch {
    return 'the server';
  }
}

export interface ServerOptions {
  home?: string;
  /** Any PostgreSQL, a Supabase project included; the embedded cluster when omitted. */
  databaseUrl?: string;
  host?: string;
  port?: number;
  /** Verify Supabase tokens with the project's JWT secret, or with its JWKS endpoint. */
  jwtSecret?: string;
  jwksUrl?: string;
  /**
   * Supabase Realtime for viewers (a Supabase control plane: https://<ref>.supabase.co and its anon key).
   * Omitted: this server's own gateway, fed by the database it runs on.
   */
  realtimeUrl?: string;
  realtimeKey?: string;
  executorModules?: string[];
  worker?: boolean;
  concurrency?: number;
  leaseSeconds?: number;
  sweepIntervalMs?: number;
  /**
   * The operator's infrastructure registry (database servers, filestore roots, runtimes, repositories
   * and the projects bound to each); <home>/infrastructure.yaml by default.
   */
  infraFile?: string;
  /** The OS user runs' tools run as when the server is root (default: odooops, created when missing). */
  runAs?: string;
  /** How often the daily schedule (backups, retention) is checked; 0 turns it off. Default 10 minutes. */
  scheduleIntervalMs?: number;
  /** The backup store's directory; <home>/backups by default. */
  backupDir?: string;
  /** What an import upload may weigh (bytes; default 20 GiB) and expand to (default 20 times that). */
  maxImportBytes?: number;
  maxImportExpandedBytes?: number;
  demo?: boolean;
  /** GitHub: the webhook secret (POST /api/webhooks/github), the token for statuses/deployments/comments, the API URL (GitHub Enterprise, or a test double). */
  githubWebhookSecret?: string;
  githubToken?: string;
  githubApiUrl?: string;
  /**
   * Sign-in (issue 15): the GitHub OAuth app whose device flow `odooops login` runs (its client id; null
   * without one: GitHub tokens can still be exchanged), GitHub's web URL (https://github.com), how long
   * session access tokens live (seconds, default 3600), and sign-ins per client address.
   */
  githubClientId?: string;
  /** More OAuth apps whose GitHub tokens may sign people in, beside VS Code's and githubClientId. */
  githubAllowedClientIds?: string[];
  githubWebUrl?: string;
  sessionTtlSeconds?: number;
  signInRateLimit?: { burst: number; perMinute: number };
  /** The worker's own files (checkouts, Odoo processes); <home>/work by default (a directory the run user owns). */
  workDir?: string;
  /** Shells on environments: ended after this long without input (default 30 minutes), at most this many open per person. */
  shellIdleMs?: number;
  shellMaxPerUser?: number;
  /** Crash-unsafe database settings, for tests and benchmarks. */
  fast?: boolean;
  log?: (message: string) => void;
}

export interface RunningServer {
  url: string;
  databaseUrl: string;
  mode: 'embedded' | 'external';
  token: string;
  userId: string;
  home: string;
  /** The embedded cluster's data directory (embedded mode). */
  dataDir: string | undefined;
  pool: pg.Pool;
  worker: Worker | undefined;
  /** The registry this server resolves names with (and published to the control plane). */
  infra: Infrastructure;
  /** Reads the registry file again and publishes it (SIGHUP). */
  reloadInfrastructure(): Promise<void>;
  gateway: RealtimeGateway;
  shells: ShellGateway;
  secret: Uint8Array;
  /** The mail catcher's SMTP endpoint (where it listens), when it is on. */
  mailCatcher: { host: string; port: number } | undefined;
  stop(graceMs?: number): Promise<void>;
}

export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const home = odooopsHome(opts.home);
  if (existsSync(home) && !statSync(home).isDirectory()) {
    throw new Error(`the OdooOps directory ${home} is a file, not a directory; point --home (or ODOOOPS_HOME) at a directory`);
  }
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((err) => log(`shutdown: ${(err as Error).message}`));
  };

  try {
    // Before anything is spawned: as root, the tools of runs get an unprivileged user of their own.
    await setupRunUser(opts.runAs, log);
    let cluster: EmbeddedCluster | undefined;
    let databaseUrl = opts.databaseUrl;
    if (!databaseUrl) {
      cluster = await startEmbedded({ home, fast: opts.fast, log: () => {} });
      cleanups.push(() => cluster!.stop());
      databaseUrl = cluster.url;
    }
    const mode = cluster ? 'embedded' : 'external';
    // Before anything LISTENs or locks: a transaction pooler would break both, silently.
    if (!cluster) await assertSessionConnection(databaseUrl);

    const pool = createPool(databaseUrl, 10);
    cleanups.push(() => pool.end());
    const client = await pool.connect();
    try {
      const result = await migrate(client, undefined, log);
      if (result.applied.length) log(`applied ${result.applied.length} migration(s)`);
    } finally {
      client.release();
    }

    const identity = localIdentity(home);
    // Local tokens are signed with the Supabase project's secret when one is given, so they stay valid.
    const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : identity.secret;
    // Sign-in sessions' tokens (with a sid) are this server's own, checked against ops.sessions; any other
    // token is the operator's (odooops token) or Supabase's.
    const verifier: TokenVerifier = sessionVerifier(pool, secret, opts.jwksUrl
      ? withLocalTokens(secret, jwksVerifier(opts.jwksUrl))
      : hsVerifier(secret));
    const token = await signToken(secret, { sub: identity.userId, email: 'local@odooops.invalid' }, '365d');
    // The operator's own identity may create projects and grant that right (odooops admin).
    await ensureInstanceAdmin(pool, identity.userId);
    // Named after the account the server runs as, so the people the operator works with see "by alice
    // (operator)" on the runs they queue rather than an id; a name given before is kept.
    await pool.query('insert into ops.users (id, name) values ($1, $2) on conflict (id) do nothing', [identity.userId, `${operatorAccount()} (operator)`]);

    // The registry: the operator's file, plus the demo's built-in entries when there is a demo (asked for
    // now, or made by an earlier --demo start): no demo role or filestore for a server that never had one.
    const hasDemo = opts.demo || (await pool.query('select 1 from ops.projects where slug = $1', [DEMO_SLUG])).rowCount === 1;
    // The server's own directory is the backup store "default", bound to every project.
    const backupDir = opts.backupDir ?? homeFiles(home).backups;
    const builtins: Builtins = { ...(hasDemo ? await demoInfrastructure({ databaseUrl, home, log }) : {}), backupDir };
    const infraFile = opts.infraFile ?? process.env.ODOOOPS_INFRA ?? homeFiles(home).infrastructure;
    let infra = Infrastructure.load(infraFile, builtins);
    for (const w of infra.warnings) log(`registry: ${w}`);
    // The mail catcher listens before the worker starts: the worker points the clones it neutralizes at it.
    const mailSettings = infra.mailCatcherSettings();
    let mailCatcher: MailCatcher | undefined;
    if (mailSettings.enabled) {
      const portFile = homeFiles(home).mailCatcherPort;
      const lastPort = existsSync(portFile) ? Number(readFileSync(portFile, 'utf8').trim()) || undefined : undefined;
      mailCatcher = await startMailCatcher({ pool, settings: () => infra.mailCatcherSettings(), log, lastPort });
      cleanups.push(() => mailCatcher!.stop());
      if (mailSettings.port === undefined && mailCatcher.port !== lastPort) writeFileSync(portFile, `${mailCatcher.port}\n`);
      builtins.mailCatcher = reachableAddress(mailCatcher.host, mailCatcher.port);
      log(`mail catcher: SMTP on ${mailCatcher.host}:${mailCatcher.port}; staging and development Odoo send to ${JSON.stringify(infra.mailCatcherAddress())}`);
    }
    const publisher = `${process.pid}@${hostname()}`;
    await publishInfrastructure(pool, infra, publisher, log);
    await writeUpgradeSuggestion(pool, infra, homeFiles(home).infrastructureFromUpgrade, log);

    const demoSeeded = opts.demo ? await seedDemo({ pool, databaseUrl, userId: identity.userId, builtins, log }) : false;

    const executors = await loadExecutors(opts.executorModules ?? []);
    const github = opts.githubToken ? new GitHubFeedback({ token: opts.githubToken, baseUrl: opts.githubApiUrl }) : null;
    let worker: Worker | undefined;
    // The API reads backups through the same registry as the worker (a project's store may be off-site).
    const backupStores: BackupStores = {
      uploads: infra.backupStore(DEFAULT_BACKUP_STORE, '*'),
      resolve: (slug, names) => resolveStores(names, (name) => infra.backupStore(name, slug)),
    };
    if (opts.worker !== false) {
      worker = new Worker({
        pool, databaseUrl, executors, log,
        concurrency: opts.concurrency, leaseSeconds: opts.leaseSeconds, sweepIntervalMs: opts.sweepIntervalMs,
        infra, github, workDir: prepareWorkDir(opts.workDir ?? join(sharedDir(home), 'work'), backupDir),
      });
      await worker.start();
      if (demoSeeded) log(`demo: cloning production into staging (run ${await queueDemoClone(pool)})`);
      if (opts.scheduleIntervalMs !== 0) {
        const scheduler = new Scheduler(pool, opts.scheduleIntervalMs ?? 10 * 60_000, log, { stores: () => infra.watchedBackupStores(log) });
        scheduler.start();
        cleanups.push(async () => scheduler.stop());
      }
    }
    const reloadInfrastructure = async () => {
      const next = Infrastructure.load(infraFile, builtins);
      for (const w of next.warnings) log(`registry: ${w}`);
      await publishInfrastructure(pool, next, publisher, log);
      infra = next;
      worker?.setInfrastructure(next);
    };

    const realtime = { url: opts.realtimeUrl ?? null, apiKey: opts.realtimeKey ?? 'odooops-local' };
    const maxUploadBytes = opts.maxImportBytes ?? DEFAULT_IMPORT_LIMITS.maxUploadBytes;
    const importLimits = { maxUploadBytes, maxExpandedBytes: opts.maxImportExpandedBytes ?? maxUploadBytes * 20 };
    // A Supabase control plane (its tokens, its Realtime) signs people in with Supabase Auth.
    const supabase = Boolean((opts.jwtSecret || opts.jwksUrl) && opts.realtimeUrl);
    const auth: Health['auth'] = {
      github: supabase ? null : { clientId: opts.githubClientId ?? null, webUrl: opts.githubWebUrl ?? 'https://github.com' },
      supabase: supabase ? { url: opts.realtimeUrl!, anonKey: opts.realtimeKey ?? '' } : null,
    };
    const signIn = new SignIn({
      pool, secret, verifier, supabase, githubApiUrl: opts.githubApiUrl ?? 'https://api.github.com',
      githubClientIds: new Set([VSCODE_GITHUB_CLIENT_ID, ...(opts.githubClientId ? [opts.githubClientId] : []), ...(opts.githubAllowedClientIds ?? [])]),
      sessionTtlSeconds: opts.sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS, rateLimit: opts.signInRateLimit,
    });
    const api = createApiServer({ pool, verifier, mode, version: VERSION, realtime, auth, signIn, backupStores, importLimits, log, github, githubWebhookSecret: opts.githubWebhookSecret });
    await new Promise<void>((resolve, reject) => {
      api.once('error', reject);
      api.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    // Supabase Realtime's websocket protocol on the same port, fed by realtime.send() in the database:
    // supabase-js clients (the extension, the webview) work against a local server unchanged.
    const gateway = new RealtimeGateway({ server: api, pool, databaseUrl, verifier, log, otherPaths: [SHELL_PATH] });
    await gateway.start();
    // Shells run where this server runs its tools: the worker's directory, as the run user.
    const shells = new ShellGateway({
      server: api, pool, verifier, log, infra: () => infra, workDir: opts.workDir ?? join(sharedDir(home), 'work'),
      idleMs: opts.shellIdleMs, maxPerUser: opts.shellMaxPerUser,
    });
    shells.start();
    const { address, port } = api.address() as AddressInfo;
    const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          api.close(() => resolve());
          api.closeAllConnections();
        }),
    );
    cleanups.push(() => gateway.stop()); // runs before the HTTP server closes: cleanups unwind in reverse
    cleanups.push(() => shells.stop());

    const files = homeFiles(home);
    const connection: LocalConnection = { url, token, userId: identity.userId, mode, pid: process.pid };
    // Written beside and renamed: a reader (the CLI, the extension) never sees a half-written file.
    writeFileSync(`${files.connection}.${process.pid}.tmp`, JSON.stringify(connection, null, 2) + '\n', { mode: 0o600 });
    renameSync(`${files.connection}.${process.pid}.tmp`, files.connection);
    cleanups.push(async () => {
      // Only remove the file if it still describes this server.
      if (existsSync(files.connection) && JSON.parse(readFileSync(files.connection, 'utf8')).pid === process.pid) rmSync(files.connection);
    });

    let stopped: Promise<void> | undefined;
    return {
      url, databaseUrl, mode, token, userId: identity.userId, home, dataDir: cluster?.dataDir, pool, worker, gateway, shells, secret,
      mailCatcher: mailCatcher && { host: mailCatcher.host, port: mailCatcher.port },
      get infra() {
        return infra;
      },
      reloadInfrastructure,
      stop(graceMs = 20_000) {
        stopped ??= (async () => {
          // Order matters: stop taking requests, let the worker finish or release its runs while the
          // database is still up, then close the pool and the cluster.
          const workerStop = worker?.stop(graceMs);
          await workerStop;
          await cleanup();
        })();
        return stopped;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * The worker's directory (checkouts, Odoo's pid and log files) belongs to the run user, whose tools write
 * there; the backup directory stays the server's (it writes backups itself, and code a run executes must
 * not be able to remove them): the run user may only read it.
 */
function prepareWorkDir(workDir: string, backupDir: string): string {
  mkdirSync(workDir, { recursive: true, mode: 0o750 });
  giveToRunUser(workDir);
  mkdirSync(backupDir, { recursive: true, mode: 0o750 });
  shareWithRunUser(backupDir);
  return workDir;
}
