// Whom the tools a run executes (git, odoo-bin, ssh, pg_dump/pg_restore, tar, and every change to a
// filestore) run as. A server started as root does not lend them root: it runs them as an unprivileged
// OS user (`odooops` by default, created when missing, as the embedded PostgreSQL needs its `postgres`
// user; `--run-as` names another, e.g. the user that owns the Odoo filestore). They also get a small
// environment of their own, not the server's (which holds the operator's secrets: other projects'
// database passwords, the GitHub token).
//
// One server process has one run user, set once at start (`setupRunUser`); a process that never sets it
// (the CLI's `dev pull` on a developer's machine) runs its tools as itself, with its own environment.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { access, constants, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RunUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** True when tools run as another user than the server (the server is root). */
  switches: boolean;
  /** True once a server configured it: tools then get a minimal environment. */
  sandboxed: boolean;
}

const DEFAULT_USER = 'odooops';
const DEFAULT_HOME = '/var/lib/odooops/run-user';

function self(): RunUser {
  const u = userInfo();
  return { name: u.username, uid: u.uid, gid: u.gid, home: u.homedir, switches: false, sandboxed: false };
}

let current: RunUser = self();

export const runUser = (): RunUser => current;

async function lookup(name: string): Promise<{ uid: number; gid: number; home: string } | null> {
  try {
    const { stdout } = await run('getent', ['passwd', name]);
    const f = stdout.trim().split(':');
    return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
  } catch {
    return null;
  }
}

/**
 * Decides the run user at server start. As root: `requested` or `odooops` (created if missing); never
 * root itself. Not root: the server's own user (another one cannot be switched to).
 */
export async function setupRunUser(requested: string | undefined, log: (m: string) => void): Promise<RunUser> {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    const me = self();
    if (requested && requested !== me.name) {
      throw new Error(`--run-as ${requested}: only a server started as root can run tools as another user; start it as ${requested} instead (see the README's systemd example)`);
    }
    current = { ...me, sandboxed: true };
    return current;
  }
  if (requested === 'root' || requested === '0') {
    throw new Error('--run-as root: OdooOps does not run a run\'s tools as root; name an unprivileged user (the default creates "odooops")');
  }
  const name = requested ?? DEFAULT_USER;
  let found = await lookup(name);
  if (!found && !requested) {
    // /var/lib/odooops itself stays open to other users (the embedded cluster's postgres user works below it).
    mkdirSync(dirname(DEFAULT_HOME), { recursive: true, mode: 0o755 });
    mkdirSync(DEFAULT_HOME, { recursive: true, mode: 0o750 });
    await run('useradd', ['--system', '--user-group', '--home-dir', DEFAULT_HOME, '--no-create-home', '--shell', '/usr/sbin/nologin', name])
      .catch(async (err) => {
        // Another server on this machine may have created it a moment ago.
        if (!(await lookup(name))) throw new Error(`cannot create the OS user ${name} for running tools (${(err as Error).message.split('\n')[0]}); create it, or pass --run-as USER`);
      });
    found = await lookup(name);
    if (found) chownSync(DEFAULT_HOME, found.uid, found.gid);
  }
  if (!found) throw new Error(`--run-as ${name}: there is no such OS user on this machine`);
  if (found.uid === 0) throw new Error(`--run-as ${name}: that user is root; name an unprivileged user`);
  current = { name, uid: found.uid, gid: found.gid, home: found.home, switches: true, sandboxed: true };
  log(`running as root: the tools of runs (git, odoo-bin, ssh, pg_dump, pg_restore, tar, filestore changes) run as the unprivileged user ${name} (--run-as to choose another)`);
  return current;
}

/** For tests and benchmarks that configure a server in-process and want their process back as it was. */
export function resetRunUser(): void {
  current = self();
}

/**
 * The environment a tool gets: PATH, locale and the run user's HOME, plus what the caller adds (a
 * PGPASSWORD, GIT_* settings). Outside a server (the CLI), the process's own environment.
 */
export function toolEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const u = current;
  const base: NodeJS.ProcessEnv = u.sandboxed
    ? {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        HOME: u.home,
        USER: u.name,
        LOGNAME: u.name,
        LANG: process.env.LANG ?? 'C.UTF-8',
        ...(process.env.TZ ? { TZ: process.env.TZ } : {}),
      }
    : { ...process.env };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** spawn() as the run user (uid/gid when the server is root; libuv drops root's supplementary groups). */
export function spawnAs(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const u = current;
  return spawn(cmd, args, { ...opts, env: opts.env ?? toolEnv(), ...(u.switches ? { uid: u.uid, gid: u.gid } : {}) });
}

/** execFile() as the run user; rejects with the tool's stderr. */
export function execAs(cmd: string, args: string[], opts: { signal?: AbortSignal; env?: NodeJS.ProcessEnv; maxBuffer?: number; cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  const u = current;
  return run(cmd, args, { ...opts, env: opts.env ?? toolEnv(), maxBuffer: opts.maxBuffer ?? 64 << 20, ...(u.switches ? { uid: u.uid, gid: u.gid } : {}) });
}

/** Hands a directory the server made to the run user (it writes there: checkouts, filestores, scratch). */
export function giveToRunUser(path: string): void {
  const u = current;
  if (u.switches) chownSync(path, u.uid, u.gid);
}

/**
 * Lets the run user read a directory the server writes (the backup store: pg_restore opens a dump
 * itself), and not change it: the server keeps it, the run user's group may read, nobody else.
 */
export function shareWithRunUser(path: string): void {
  const u = current;
  if (u.switches) chownSync(path, process.getuid!(), u.gid);
  chmodSync(path, 0o750);
}

/** A new scratch directory the run user owns (its tools write there). */
export async function runTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  giveToRunUser(dir);
  return dir;
}

async function coreutils(cmd: string, args: string[]): Promise<void> {
  try {
    await execAs(cmd, args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} failed as ${current.name}: ${(e.stderr || e.message).trim().split('\n').slice(-1)[0]}`);
  }
}

/**
 * Changes to filestores, made as the run user: a path inside a root the operator gave to another user
 * cannot be changed by accident, and a symbolic link planted there is no lever on root's rights.
 */
export const runFs = {
  async mkdir(path: string): Promise<void> {
    if (current.switches) await coreutils('mkdir', ['-p', '--', path]);
    else await mkdir(path, { recursive: true });
  },
  async rm(path: string): Promise<void> {
    if (current.switches) await coreutils('rm', ['-rf', '--one-file-system', '--', path]);
    else await rm(path, { recursive: true, force: true });
  },
  /** Renames; ENOENT (nothing to move) is reported as such, so callers can tell it from a failure. */
  async rename(from: string, to: string): Promise<void> {
    if (!current.switches) return rename(from, to);
    try {
      await access(from, constants.F_OK);
    } catch {
      throw Object.assign(new Error(`${from} does not exist`), { code: 'ENOENT' });
    }
    await coreutils('mv', ['-T', '--', from, to]);
  },
};

/** Whether the run user can read a file (a backup the server stored, that pg_restore would open itself). */
export async function runUserCanRead(path: string): Promise<boolean> {
  if (!current.switches) return access(path, constants.R_OK).then(() => true, () => false);
  return execAs('test', ['-r', path]).then(() => true, () => false);
}

export type { ChildProcess };
