// Real Odoo Community (17.0, 19.0) from ../shared/odoo (beside the repository; see its README): installed
// by its install.sh into /var/cache/odoo/<version> (packages from apt, idempotent, ~20 s the first time,
// under a lock so two test files can ask at once), a database created with odoo-bin, and odoo-bin
// serving it on a free port.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../server/db/embedded.ts';

const run = promisify(execFile);

/** ../shared beside the repository (the main checkout or a worktree), or ODOOOPS_SHARED_DIR. */
export const SHARED_DIR = process.env.ODOOOPS_SHARED_DIR ?? resolve(import.meta.dirname, '..', '..', '..', 'shared');
const CACHE = '/var/cache/odoo';

export interface OdooInstall {
  version: string;
  dir: string;
  odooBin: string;
}

/** Installs (or finds, in under a second) Odoo `version` under /var/cache/odoo/<version>. */
export async function installOdoo(version: '17.0' | '19.0'): Promise<OdooInstall> {
  const script = join(SHARED_DIR, 'odoo', 'install.sh');
  if (!existsSync(script)) throw new Error(`${script} is missing: the Odoo bundles live in ../shared/odoo beside the repository (or set ODOOOPS_SHARED_DIR)`);
  if (process.getuid?.() !== 0) throw new Error('installing real Odoo needs root (install.sh runs apt-get): run the tests as root');
  mkdirSync(CACHE, { recursive: true });
  const dir = join(CACHE, version);
  try {
    // One install at a time on this machine: apt and dpkg take their own locks and fail instead of waiting.
    const { stdout } = await run('flock', [join(CACHE, '.install.lock'), script, version, dir], { maxBuffer: 64 << 20, timeout: 600_000 });
    return { version, dir, odooBin: stdout.trim().split('\n').at(-1)! };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`install.sh ${version} failed: ${e.message}\n${(e.stderr ?? '').split('\n').slice(-20).join('\n')}`);
  }
}

export interface OdooDbServer {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** odoo-bin's arguments for a database on `pg`, isolated from any ~/.odoorc. */
export function odooArgs(odoo: OdooInstall, pg: OdooDbServer, dataDir: string): string[] {
  mkdirSync(dataDir, { recursive: true });
  const config = join(dataDir, 'odoo.conf');
  writeFileSync(config, '[options]\n');
  return [
    odoo.odooBin, '-c', config, '--db_host', pg.host, '--db_port', String(pg.port), '-r', pg.user, '-w', pg.password,
    '--data-dir', dataDir, `--addons-path=${odoo.dir}/addons,${odoo.dir}/odoo/addons`,
  ];
}

/** Creates `db` with `modules` installed, without demo data. */
export async function createOdooDatabase(odoo: OdooInstall, pg: OdooDbServer, dataDir: string, db: string, modules = 'base'): Promise<void> {
  // 17.0 loads demo data unless told not to; 19.0 loads none unless told to.
  const demo = odoo.version === '17.0' ? ['--without-demo=all'] : [];
  try {
    await run('/usr/bin/python3', [...odooArgs(odoo, pg, dataDir), '-d', db, '-i', modules, ...demo, '--stop-after-init', '--log-level=warn'], { maxBuffer: 64 << 20, timeout: 600_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`odoo-bin ${odoo.version} -i ${modules} failed: ${e.message}\n${(e.stderr ?? '').split('\n').slice(-30).join('\n')}`);
  }
}

export interface RunningOdoo {
  url: string;
  process: ChildProcess;
  /** What odoo-bin printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** odoo-bin serving `db` (no workers, no crons) until stop(); resolves once /web/health answers. */
export async function serveOdoo(odoo: OdooInstall, pg: OdooDbServer, dataDir: string, db: string): Promise<RunningOdoo> {
  const port = await freePort();
  const child = spawn('/usr/bin/python3', [...odooArgs(odoo, pg, dataDir), '-d', db, '--db-filter', `^${db}$`, '--http-interface', '127.0.0.1',
    '--http-port', String(port), '--workers', '0', '--max-cron-threads', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`odoo-bin ${odoo.version} exited with ${child.exitCode} before serving:\n${out.slice(-3000)}`);
    const ok = await fetch(`${url}/web/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`odoo-bin ${odoo.version} did not answer /web/health within 60 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, process: child, output: () => out, stop };
}

/** POST /web/session/authenticate: the uid on success, null when Odoo refuses the credentials. */
export async function authenticate(odoo: RunningOdoo, db: string, login: string, password: string): Promise<number | null> {
  const res = await fetch(`${odoo.url}/web/session/authenticate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { db, login, password } }),
  });
  const body = (await res.json()) as { result?: { uid?: number }; error?: { data?: { name?: string } } };
  if (body.result?.uid) return body.result.uid;
  if (body.error?.data?.name === 'odoo.exceptions.AccessDenied') return null;
  throw new Error(`unexpected answer from /web/session/authenticate: ${res.status} ${JSON.stringify(body).slice(0, 500)}`);
}
