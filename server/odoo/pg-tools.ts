// PostgreSQL's client tools (pg_dump, pg_restore) as found on the worker's machine, matched to the
// server they talk to. Always spawned with argument arrays, the password in PGPASSWORD (never argv), as
// the run user (server/infra/run-user.ts) with an environment of their own.
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnAs, toolEnv } from '../infra/run-user.ts';

const run = promisify(execFile);

export interface PgTarget {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database: string;
}

export interface PgTool {
  path: string;
  /** Major version, e.g. 15. */
  major: number;
  version: string;
}

/** Candidate directories: Debian/Ubuntu keep one bin per major version; then whatever PATH has. */
function candidates(name: string): string[] {
  const out: string[] = [];
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    for (const v of readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a))) {
      const p = join(base, v, 'bin', name);
      if (existsSync(p)) out.push(p);
    }
  }
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = join(dir, name);
    if (existsSync(p) && !out.includes(p)) out.push(p);
  }
  return out;
}

async function versionOf(path: string): Promise<PgTool> {
  const { stdout } = await run(path, ['--version']);
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
  if (!m) throw new Error(`cannot read the version of ${path}: ${stdout.trim()}`);
  return { path, major: Number(m[1]), version: `${m[1]}${m[2] ? `.${m[2]}` : ''}` };
}

/**
 * The tool to use against a server of `serverVersion` (SHOW server_version): the lowest installed major
 * that is not older than the server (a newer pg_dump reads an older server; an older one refuses).
 */
export async function findPgTool(name: 'pg_dump' | 'pg_restore' | 'psql', serverVersion: string): Promise<PgTool> {
  const serverMajor = Number(/^(\d+)/.exec(serverVersion)?.[1]);
  const found = await Promise.all(candidates(name).map((p) => versionOf(p).catch(() => undefined)));
  const tools = found.filter((t): t is PgTool => !!t).sort((a, b) => a.major - b.major);
  if (tools.length === 0) {
    throw new Error(`${name} is not installed on this worker; install PostgreSQL's client tools (Debian/Ubuntu: apt-get install postgresql-client-${serverMajor})`);
  }
  const fit = tools.find((t) => t.major >= serverMajor);
  if (!fit) {
    const newest = tools.at(-1)!;
    throw new Error(
      `${name} ${newest.version} is older than the database server (PostgreSQL ${serverVersion}) and cannot work with it; ` +
        `install postgresql-client-${serverMajor} on the worker (Debian/Ubuntu: apt-get install postgresql-client-${serverMajor}, from apt.postgresql.org if your release lacks it)`,
    );
  }
  return fit;
}

/** The newest installed major of a tool: reads files written by every older version (an uploaded dump). */
export async function newestPgTool(name: 'pg_restore'): Promise<PgTool> {
  const found = await Promise.all(candidates(name).map((p) => versionOf(p).catch(() => undefined)));
  const newest = found.filter((t): t is PgTool => !!t).sort((a, b) => b.major - a.major)[0];
  if (!newest) throw new Error(`${name} is not installed on this worker; install PostgreSQL's client tools (Debian/Ubuntu: apt-get install postgresql-client)`);
  return newest;
}

export function connectionArgs(t: PgTarget): string[] {
  const args: string[] = [];
  if (t.host) args.push('--host', t.host);
  if (t.port) args.push('--port', String(t.port));
  if (t.user) args.push('--username', t.user);
  args.push('--no-password');
  return args;
}

export function pgEnv(t: PgTarget): NodeJS.ProcessEnv {
  // Only this target's password, and no service file or password file of the caller's choosing.
  return toolEnv({ PGAPPNAME: 'odooops', PGCONNECT_TIMEOUT: '10', PGPASSWORD: t.password, PGSERVICE: undefined, PGSERVICEFILE: undefined, PGPASSFILE: undefined });
}

/**
 * Spawns a tool; its stderr is collected (the last 8 KB, for the error message). Resolves with the
 * child; `done` settles when it exits, rejecting with what it said on failure.
 */
export function spawnTool(tool: PgTool | string, args: string[], opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; stdin?: 'pipe' | 'ignore' }) {
  const path = typeof tool === 'string' ? tool : tool.path;
  const child: ChildProcess = spawnAs(path, args, { env: opts.env ?? toolEnv(), stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], signal: opts.signal });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8192);
  });
  const name = path.split('/').pop();
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`${name} could not run: ${err.message}`)));
    child.once('close', (code, sig) => {
      if (code === 0) resolve();
      else reject(new Error(`${name} failed (${sig ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' / ') || 'no message'}`));
    });
  });
  done.catch(() => {});
  return { child, done, stderr: () => stderr };
}

/**
 * Waits for a tool and the stream work feeding or draining it; when either fails the tool is killed
 * (a pg_dump whose reader gave up would otherwise block on a full pipe forever).
 */
export async function withTool<T>(tool: ReturnType<typeof spawnTool>, work: Promise<T>): Promise<T> {
  try {
    const [result] = await Promise.all([work, tool.done]);
    return result;
  } catch (err) {
    // A tool that failed on its own (tar on a bad archive, pg_restore on a bad dump) usually shows as
    // a broken stream first ("Premature close", EPIPE, ECANCELED): its own message is the one to report. A tool
    // reading our stream that broke it has closed its input and is ending: it is given seconds, not
    // 300 ms, to say how (on a loaded machine its exit comes late; reading it as our failure was wrong).
    const code = (err as NodeJS.ErrnoException)?.code;
    // (ECANCELED: a write still queued when the tool closed its end; libuv reports it so on a busy machine.)
    const broken = !!tool.child.stdin && (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE' || code === 'ECANCELED');
    const own = await Promise.race([tool.done.then(() => null, (e: Error) => e), new Promise<undefined>((r) => setTimeout(r, broken ? 10_000 : 300))]);
    if (own) throw own;
    // A tool reading our stream (stdin) that finished its job and exited 0 may leave bytes unread (tar -x
    // stops at the archive's end marker): the pipe breaking behind it is not a failure. (A tool writing
    // to us never gets here: its output breaking off is always one.)
    if (own === null && broken) return undefined as T;
    tool.child.kill('SIGKILL');
    await tool.done.catch(() => {});
    throw err;
  }
}
