// `odooops server`: the control-plane database (embedded by default), migrations, the HTTP API and
// the worker in one process.
import { LocalBackupStore } from './odoo/backup-store.ts';
import { Scheduler } from './worker/scheduler.ts';
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { LocalConnection } from '../contract/index.ts';
import { createApiServer } from './api/http.ts';
import { hsVerifier, jwksVerifier, localIdentity, signToken, type TokenVerifier } from './auth/tokens.ts';
import { startEmbedded, type EmbeddedCluster } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { createPool } from './db/session.ts';
import { homeFiles, odooopsHome } from './paths.ts';
import { loadExecutors } from './worker/executors/index.ts';
import { Worker } from './worker/worker.ts';
import { queueDemoClone, seedDemo } from './demo.ts';
import { RealtimeGateway } from './realtime/gateway.ts';
import { GitHubFeedback } from './github/feedback.ts';
import { join } from 'node:path';

export const VERSION = '0.1.0';

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
  /** Extra directories for file: password references, besides <home>/secrets. */
  secretsDirs?: string[];
  /** How often the daily schedule (backups, retention) is checked; 0 turns it off. Default 10 minutes. */
  scheduleIntervalMs?: number;
  /** The backup store's directory; <home>/backups by default. */
  backupDir?: string;
  demo?: boolean;
  /** GitHub: the webhook secret (POST /api/webhooks/github), the token for statuses/deployments/comments, the API URL (GitHub Enterprise, or a test double). */
  githubWebhookSecret?: string;
  githubToken?: string;
  githubApiUrl?: string;
  /** The worker's own files (checkouts, Odoo processes); <home>/work by default. */
  workDir?: string;
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
  gateway: RealtimeGateway;
  secret: Uint8Array;
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
    let cluster: EmbeddedCluster | undefined;
    let databaseUrl = opts.databaseUrl;
    if (!databaseUrl) {
      cluster = await startEmbedded({ home, fast: opts.fast, log: () => {} });
      cleanups.push(() => cluster!.stop());
      databaseUrl = cluster.url;
    }
    const mode = cluster ? 'embedded' : 'external';

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
    const verifier: TokenVerifier = opts.jwksUrl
      ? jwksVerifier(opts.jwksUrl)
      : hsVerifier(secret);
    const token = await signToken(secret, { sub: identity.userId, email: 'local@odooops.invalid' }, '365d');

    const demoSeeded = opts.demo ? await seedDemo({ pool, databaseUrl, userId: identity.userId, home, log }) : false;

    const executors = await loadExecutors(opts.executorModules ?? []);
    const github = opts.githubToken ? new GitHubFeedback({ token: opts.githubToken, baseUrl: opts.githubApiUrl }) : null;
    let worker: Worker | undefined;
    const backupStore = new LocalBackupStore(opts.backupDir ?? homeFiles(home).backups);
    if (opts.worker !== false) {
      worker = new Worker({
        pool, databaseUrl, executors, log,
        concurrency: opts.concurrency, leaseSeconds: opts.leaseSeconds, sweepIntervalMs: opts.sweepIntervalMs,
        secretsDirs: [homeFiles(home).secrets, ...(opts.secretsDirs ?? [])],
        backupStore, github, workDir: opts.workDir ?? join(home, 'work'),
      });
      await worker.start();
      if (demoSeeded) log(`demo: cloning production into staging (run ${await queueDemoClone(pool)})`);
      if (opts.scheduleIntervalMs !== 0) {
        const scheduler = new Scheduler(pool, opts.scheduleIntervalMs ?? 10 * 60_000, log);
        scheduler.start();
        cleanups.push(async () => scheduler.stop());
      }
    }

    const realtime = { url: opts.realtimeUrl ?? null, apiKey: opts.realtimeKey ?? 'odooops-local' };
    const api = createApiServer({ pool, verifier, mode, version: VERSION, realtime, backupStore, log, github, githubWebhookSecret: opts.githubWebhookSecret });
    await new Promise<void>((resolve, reject) => {
      api.once('error', reject);
      api.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    // Supabase Realtime's websocket protocol on the same port, fed by realtime.send() in the database:
    // supabase-js clients (the extension, the webview) work against a local server unchanged.
    const gateway = new RealtimeGateway({ server: api, pool, databaseUrl, verifier, log });
    await gateway.start();
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
      url, databaseUrl, mode, token, userId: identity.userId, home, dataDir: cluster?.dataDir, pool, worker, gateway, secret,
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
