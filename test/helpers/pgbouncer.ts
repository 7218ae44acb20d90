// A real PgBouncer (Debian's pgbouncer package) in front of a test PostgreSQL, on a free port, in session
// or transaction pooling mode: what Supabase's pooler is on port 5432 (session) and 6543 (transaction).
// PgBouncer refuses to run as root, so as root it runs as the postgres OS user.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../server/db/embedded.ts';

const BIN = '/usr/sbin/pgbouncer';

export interface PgBouncer {
  port: number;
  /** A URL through the bouncer to `database` as `user` (trust: no password). */
  url(user: string, database: string): string;
  stop(): Promise<void>;
}

export async function startPgBouncer(target: { host: string; port: number }, mode: 'session' | 'transaction', users: string[]): Promise<PgBouncer> {
  if (!existsSync(BIN)) throw new Error(`PgBouncer is not installed (${BIN} missing): apt-get install pgbouncer`);
  const dir = mkdtempSync(join(tmpdir(), 'odooops-pgbouncer-'));
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), users.map((u) => `"${u}" ""`).join('\n') + '\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `* = host=${target.host} port=${target.port}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'userlist.txt')}`,
    `pool_mode = ${mode}`,
    'default_pool_size = 40',
    'max_client_conn = 400',
    // node-postgres may send these; PgBouncer refuses unknown startup parameters otherwise.
    'ignore_startup_parameters = extra_float_digits,options,statement_timeout',
    `logfile = ${join(dir, 'pgbouncer.log')}`,
    '',
  ].join('\n'));
  let ids: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    ids = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) };
    for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), ids.uid, ids.gid);
  }
  const child: ChildProcess = spawn(BIN, [join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'ignore', 'pipe'], ...ids });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${stderr}${readLog(dir)}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`pgbouncer did not listen on ${port}: ${stderr}${readLog(dir)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url: (user, database) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async stop() {
      // SIGTERM is an immediate shutdown up to PgBouncer 1.22 (Debian 12 has 1.18); later ones wait for
      // clients, so the kill after a while.
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'pgbouncer.log'), 'utf8');
  } catch {
    return '';
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
