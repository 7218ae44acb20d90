// Odoo on the worker's machine (deploy target "local"): odoo-bin run with argument arrays, the
// database password in PGPASSWORD (never on the command line), one process per environment whose pid
// is kept beside its log, an HTTP health check on /web/health.
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeployTarget } from '../../contract/index.ts';
import type { EnvironmentRow } from '../worker/executor.ts';
import { git } from './git.ts';
import type { OdooHost } from './host.ts';

type Local = Extract<DeployTarget, { kind: 'local' }>;

export class LocalOdoo implements OdooHost {
  private readonly dir: string;
  private readonly env: EnvironmentRow;
  private readonly target: Local;
  private readonly password: string | undefined;
  /** The worker's checkout of the repository: Odoo's addons path. */
  private readonly addons: string;
  constructor(workDir: string, env: EnvironmentRow, target: Local, password: string | undefined) {
    this.dir = join(workDir, 'odoo', env.id);
    this.env = env;
    this.target = target;
    this.password = password;
    this.addons = join(workDir, 'checkouts', env.id);
  }

  get description(): string {
    return `${this.target.odooBin} on this worker, port ${this.target.httpPort}`;
  }

  async checkout(revision: string, signal?: AbortSignal): Promise<void> {
    await git(this.addons, ['checkout', '--quiet', '--force', '--detach', revision], signal);
  }

  /** Odoo is held unavailable while its modules are updated (as on Odoo.sh). */
  async beforeUpdate(): Promise<boolean> {
    return this.stop();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  get logFile(): string {
    return join(this.dir, 'odoo.log');
  }

  private args(addons: string): string[] {
    const e = this.env;
    return ['-d', e.db_name, '--db-filter', `^${e.db_name}$`, '--addons-path', addons,
      ...(e.db_host ? ['--db_host', e.db_host] : []), ...(e.db_port ? ['--db_port', String(e.db_port)] : []), ...(e.db_user ? ['--db_user', e.db_user] : [])];
  }

  private childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.PGPASSWORD;
    if (this.password !== undefined) env.PGPASSWORD = this.password;
    return env;
  }

  /** odoo-bin -u/-i … --stop-after-init; each output line goes to `out`. */
  async update(modules: { update: string[]; install: string[] }, out: (line: string) => Promise<void>, signal: AbortSignal): Promise<void> {
    const args = [...this.args(this.addons), ...(modules.update.length ? ['-u', modules.update.join(',')] : []), ...(modules.install.length ? ['-i', modules.install.join(',')] : []),
      '--stop-after-init', '--no-http'];
    const child = spawn(this.target.odooBin, args, { env: this.childEnv(), stdio: ['ignore', 'pipe', 'pipe'], signal });
    const lines = async (stream: NodeJS.ReadableStream) => {
      let rest = '';
      for await (const chunk of stream) {
        const parts = (rest + chunk.toString()).split('\n');
        rest = parts.pop()!;
        for (const l of parts) await out(l);
      }
      if (rest) await out(rest);
    };
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (err) => reject(new Error(`${this.target.odooBin} could not run: ${err.message}`)));
      Promise.all([lines(child.stdout!), lines(child.stderr!)]).then(() => child.exitCode ?? new Promise<number | null>((r) => child.once('close', r))).then(resolve, reject);
    });
    if (code !== 0) throw new Error(`the module update failed (odoo-bin exited with ${code})`);
  }

  private pid(): number | null {
    const f = join(this.dir, 'odoo.pid');
    if (!existsSync(f)) return null;
    const pid = Number(readFileSync(f, 'utf8'));
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      return null;
    }
  }

  async stop(): Promise<boolean> {
    const pid = this.pid();
    if (!pid) return false;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        process.kill(pid, 0);
      } catch {
        await rm(join(this.dir, 'odoo.pid'), { force: true });
        return true;
      }
    }
    process.kill(pid, 'SIGKILL');
    await rm(join(this.dir, 'odoo.pid'), { force: true });
    return true;
  }

  /** Starts Odoo in the background (it outlives the run), logging to logFile. */
  async start(): Promise<number> {
    const addons = this.addons;
    await mkdir(this.dir, { recursive: true });
    const log = openSync(this.logFile, 'a');
    const child = spawn(this.target.odooBin, [...this.args(addons), '--http-port', String(this.target.httpPort)], {
      env: this.childEnv(), stdio: ['ignore', log, log], detached: true,
    });
    child.unref();
    await writeFile(join(this.dir, 'odoo.pid'), String(child.pid));
    return child.pid!;
  }

  /** Waits for GET /web/health to answer 200; throws with what it last saw. */
  async healthy(timeoutMs = 30_000, signal?: AbortSignal): Promise<void> {
    const url = `http://127.0.0.1:${this.target.httpPort}/web/health`;
    const until = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < until) {
      signal?.throwIfAborted();
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
        last = `HTTP ${r.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (!this.pid()) throw new Error(`Odoo exited instead of answering ${url} (see ${this.logFile})`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`Odoo did not answer ${url} with 200 within ${timeoutMs / 1000} s (last: ${last})`);
  }
}
