// Odoo on the worker's machine (a "local" runtime of the registry): the operator's odoo-bin, run as the
// run user with argument arrays and an environment of its own (the database password in PGPASSWORD,
// never on the command line, and none of the server's other secrets), one process per environment whose
// pid is kept beside its log, an HTTP health check on /web/health. The checkout is only ever an addons
// directory: what runs is the binary the operator named.
import { existsSync, openSync, readFileSync, closeSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { LocalRuntime } from '../infra/registry.ts';
import { linesOf } from '../infra/output-lines.ts';
import { runFs, spawnAs, toolEnv } from '../infra/run-user.ts';
import type { PgTarget } from '../odoo/pg-tools.ts';
import type { EnvironmentRow } from '../rows.ts';
import { git } from './git.ts';
import { demoFlags } from './odoo-demo.ts';
import type { OdooHost } from './host.ts';
import { venvPython } from './python-env.ts';
import { addonsDirs, checkoutWithSubmodules, repositoryContents } from './submodules.ts';

export class LocalOdoo implements OdooHost {
  private readonly dir: string;
  private readonly env: EnvironmentRow;
  private readonly runtime: LocalRuntime;
  private readonly port: number;
  private readonly db: PgTarget;
  /** The environment's filestore (<data dir>/filestore/<db>), when its root is laid out as Odoo's. */
  private readonly filestore: string | null;
  /** The worker's checkout of the repository: the first addons directory. */
  private readonly addons: string;
  private readonly workDir: string;
  /** The repository's URL: with it, checkouts bring their submodules (fetched before) and their addons folders. */
  private readonly repoUrl: string | null;
  /** The folders holding modules at the checked-out revision (submodules' too): the first addons directories. */
  private addonsFolders: string[] | null = null;
  constructor(workDir: string, env: EnvironmentRow, runtime: LocalRuntime, db: PgTarget, filestore: string | null, repoUrl: string | null = null) {
    if (env.http_port === null) throw new Error(`${env.name} has no HTTP port for the runtime ${env.runtime}; an admin sets its deploy target again`);
    this.dir = join(workDir, 'odoo', env.id);
    this.env = env;
    this.runtime = runtime;
    this.port = env.http_port;
    this.db = db;
    this.filestore = filestore;
    this.addons = join(workDir, 'checkouts', env.id);
    this.workDir = workDir;
    this.repoUrl = repoUrl;
  }

  get description(): string {
    return `the runtime ${this.env.runtime} on this worker, port ${this.port}`;
  }

  async checkout(revision: string, signal?: AbortSignal): Promise<void> {
    if (!this.repoUrl) {
      await git(this.addons, ['checkout', '--quiet', '--force', '--detach', revision], signal);
      return;
    }
    await checkoutWithSubmodules(this.addons, revision, this.repoUrl, signal);
    this.addonsFolders = addonsDirs(this.addons, (await repositoryContents(this.addons, revision, this.repoUrl)).modules);
  }

  /** odoo-bin, run by the environment's virtual environment's python when it has one (its requirements). */
  private command(args: string[]): [string, string[]] {
    const python = venvPython(this.workDir, this.env.id);
    return existsSync(python) ? [python, [this.runtime.odooBin, ...args]] : [this.runtime.odooBin, args];
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

  private args(): string[] {
    const d = this.db;
    // Odoo keeps filestores in <data_dir>/filestore/<db>: a root named "filestore" is such a layout.
    const dataDir = this.filestore && basename(dirname(this.filestore)) === 'filestore' ? dirname(dirname(this.filestore)) : null;
    return [...this.runtime.odooArgs, '-d', this.env.db_name, '--db-filter', `^${this.env.db_name}$`,
      '--addons-path', [...(this.addonsFolders ?? [this.addons]), ...this.runtime.addonsPath].join(','),
      ...(dataDir ? ['--data-dir', dataDir] : []),
      ...(d.host ? ['--db_host', d.host] : []), ...(d.port ? ['--db_port', String(d.port)] : []), ...(d.user ? ['--db_user', d.user] : [])];
  }

  private childEnv(): NodeJS.ProcessEnv {
    return toolEnv({ PGPASSWORD: this.db.password });
  }

  /** odoo-bin -u/-i … --stop-after-init; each output line goes to `out`. */
  async update(modules: { update: string[]; install: string[] }, out: (line: string) => Promise<void>, signal: AbortSignal): Promise<void> {
    const [bin, pre] = this.command([]);
    const args = [...this.args(), ...await demoFlags(this.runtime.odooBin, pre.length ? bin : null), ...(modules.update.length ? ['-u', modules.update.join(',')] : []), ...(modules.install.length ? ['-i', modules.install.join(',')] : []),
      '--stop-after-init', '--no-http'];
    const child = spawnAs(...this.command(args), { env: this.childEnv(), stdio: ['ignore', 'pipe', 'pipe'], signal });
    const code = await linesOf(child, out, `the runtime ${this.env.runtime}'s odoo-bin`);
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
    await runFs.mkdir(this.dir);
    const log = openSync(this.logFile, 'a');
    try {
      const child = spawnAs(...this.command([...this.args(), '--http-port', String(this.port)]), {
        env: this.childEnv(), stdio: ['ignore', log, log], detached: true,
      });
      child.unref();
      await writeFile(join(this.dir, 'odoo.pid'), String(child.pid));
      return child.pid!;
    } finally {
      closeSync(log);
    }
  }

  /** Waits for GET /web/health to answer 200; throws with what it last saw. */
  async healthy(timeoutMs = 30_000, signal?: AbortSignal): Promise<void> {
    const url = `http://127.0.0.1:${this.port}/web/health`;
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

  /**
   * odoo-bin shell on the environment's database, with the arguments and environment deploys use (an
   * interactive session: server/shell/). The subcommand goes first: odoo-bin reads it before any option.
   */
  shellCommand(): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
    return { file: this.runtime.odooBin, args: ['shell', ...this.args()], env: this.childEnv() };
  }
}
