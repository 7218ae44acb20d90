// The worker's side of following a running Odoo's log (issue 17): while a member follows an
// environment's log (a lease in ops.odoo_log_state, renewed through the API), the worker that can reach
// the log claims it and tails it: a local runtime's <workDir>/odoo/<env id>/odoo.log (written by
// LocalOdoo), or an ssh runtime's log at the path the operator declared (the registry's logPath), with
// `tail -F` over ssh. Lines are parsed for Odoo's level, redacted like a run's (the environment's
// database password, the worker's own paths), and written in batches by the run log's batcher through
// ops.append_odoo_log, which stores, trims to the recent window and announces them on odoo-log:<env>.
// No follower, no tail: the append and the claim's renewal fail once the lease has lapsed, and the tail
// stops. Woken by NOTIFY ops_odoo_log (a first follower), and checked every checkMs for the rest.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { Infrastructure, SshRuntime } from '../infra/registry.ts';
import { OdooLogParser } from '../odoo/odoo-log-line.ts';
import { knownHostsFile } from '../deploy/ssh-odoo.ts';
import { runUser } from '../infra/run-user.ts';
import type { EnvironmentRow } from '../rows.ts';
import { LogBatcher, type Line } from './log-batcher.ts';
import { tailFile, tailOverSsh, type LogTail, type TailPosition } from './log-tail.ts';

/** The run log's batcher, writing to an environment's Odoo log: each line's `stream` carries its level. */
class OdooLogBatcher extends LogBatcher {
  private readonly q: pg.Pool;
  private readonly env: string;
  private readonly me: string;
  private readonly where: () => TailPosition | null;
  constructor(pool: pg.Pool, env: string, worker: string, where: () => TailPosition | null) {
    super(pool, 0, worker);
    this.q = pool;
    this.env = env;
    this.me = worker;
    this.where = where;
  }

  protected override async write(batch: Line[], announce: boolean): Promise<void> {
    // The position read so far goes with the batch: a worker that dies with lines still buffered resumes
    // after them (lost rather than stored twice under new numbers).
    const at = this.where();
    const { rows } = await this.q.query('select ops.append_odoo_log($1, $2, $3::text[], $4::text[], $5::text[], $6, $7, $8) as seq', [
      this.env, this.me, batch.map((l) => l.ts), batch.map((l) => l.stream), batch.map((l) => l.line), announce, at?.source ?? null, at?.offset ?? null,
    ]);
    if (rows[0].seq === null) this.lost = true;
  }
}

interface Tailing {
  tail: LogTail;
  batcher: OdooLogBatcher;
  stopping?: Promise<void>;
}

export interface OdooLogsOptions {
  pool: pg.Pool;
  workerId: string;
  workDir: string;
  infra: () => Infrastructure;
  /** The worker's directories shown by name in lines ([path, label]). */
  aliases: () => [string, string][];
  log: (message: string) => void;
  /** How often leases are checked and claims renewed (and a missed NOTIFY made up for). */
  checkMs?: number;
  /** How long a claim holds without renewal (a dead worker's tail is taken over after it). */
  claimSeconds?: number;
  pollMs?: number;
}

export class OdooLogs {
  private readonly opts: Required<Omit<OdooLogsOptions, 'pollMs'>> & { pollMs?: number };
  private readonly tailing = new Map<string, Tailing>();
  /** Environments that cannot be tailed here, with why (said once in the server's log, not every check). */
  private readonly told = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(opts: OdooLogsOptions) {
    this.opts = { checkMs: 2000, claimSeconds: 30, ...opts };
  }

  start(): void {
    this.timer = setInterval(() => this.wake(), this.opts.checkMs);
    this.timer.unref();
    this.wake();
  }

  /** Environments being tailed now. */
  get active(): string[] {
    return [...this.tailing.keys()];
  }

  wake(): void {
    if (this.stopped) return;
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = this.check().catch((err) => this.opts.log(`odoo log: check failed: ${(err as Error).message}`)).finally(() => {
      this.checking = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private async check(): Promise<void> {
    const { pool, workerId, claimSeconds } = this.opts;
    // Renew what this worker tails; a refused renewal means nobody follows any more (or another took it).
    for (const [env, t] of this.tailing) {
      if (t.batcher.lost) {
        await this.end(env, 'nobody follows it any more');
        continue;
      }
      const { rows } = await pool.query('select ops.claim_odoo_log_tail($1, $2, $3) as c', [env, workerId, claimSeconds]);
      if (!rows[0].c) await this.end(env, 'nobody follows it any more');
    }
    const { rows } = await pool.query(
      `select e.*, p.slug as project_slug from ops.odoo_logs_to_tail($1) t
       join ops.environments e on e.id = t.environment_id join ops.projects p on p.id = e.project_id`, [workerId]);
    for (const row of rows as (EnvironmentRow & { project_slug: string })[]) {
      if (this.stopped) return;
      if (!this.tailing.has(row.id)) await this.begin(row);
    }
  }

  /** Where this worker reads the environment's log, or why it cannot. */
  private source(env: EnvironmentRow & { project_slug: string }): { local: string } | { ssh: SshRuntime; path: string } | { no: string } {
    let runtime;
    try {
      runtime = this.opts.infra().runtime(env.runtime, env.project_slug);
    } catch (err) {
      return { no: (err as Error).message };
    }
    if (runtime.kind === 'local') {
      const dir = join(this.opts.workDir, 'odoo', env.id);
      // Another server's worker may run this environment's Odoo: only the one whose directory holds it tails it.
      return existsSync(dir) ? { local: join(dir, 'odoo.log') } : { no: `Odoo of ${env.name} has not run on this worker` };
    }
    if (!runtime.logPath) return { no: `the runtime ${env.runtime} declares no logPath in the registry` };
    return { ssh: runtime, path: runtime.logPath };
  }

  private async begin(env: EnvironmentRow & { project_slug: string }): Promise<void> {
    const { pool, workerId, claimSeconds } = this.opts;
    const where = this.source(env);
    if ('no' in where) {
      if (this.told.get(env.id) !== where.no) this.opts.log(`odoo log of ${env.project_slug}/${env.name}: not followed here: ${where.no}`);
      this.told.set(env.id, where.no);
      return;
    }
    this.told.delete(env.id);
    const { rows } = await pool.query('select ops.claim_odoo_log_tail($1, $2, $3) as c', [env.id, workerId, claimSeconds]);
    const claim = rows[0].c as { source: string | null; offset: number | null; last_seq: number } | null;
    if (!claim) return; // another worker's, or the lease lapsed meanwhile
    let tail: LogTail | undefined;
    const batcher = new OdooLogBatcher(pool, env.id, workerId, () => tail?.position() ?? null);
    for (const [path, label] of this.opts.aliases()) batcher.alias(path, label);
    try {
      batcher.redact(this.opts.infra().database(env.db_server, env.db_name, env.project_slug).password);
    } catch {
      // No database server for it: no password to hide.
    }
    const parser = new OdooLogParser();
    const onLines = async (lines: string[]) => {
      for (const l of lines) {
        if (batcher.lost) return;
        const p = parser.parse(l);
        await batcher.log(p.line, p.level, p.ts);
      }
    };
    const onError = (err: Error) => this.opts.log(`odoo log of ${env.project_slug}/${env.name}: ${err.message}`);
    const resume = claim.source ? { source: claim.source, offset: Number(claim.offset) } : null;
    tail = 'local' in where
      ? tailFile(where.local, onLines, { resume, onError, pollMs: this.opts.pollMs, owners: [...new Set([runUser().uid, process.getuid?.() ?? runUser().uid])] })
      : tailOverSsh(where.ssh, where.path, onLines, { backlogLines: claim.last_seq > 0 ? 0 : 100, knownHosts: knownHostsFile(this.opts.workDir), onError });
    this.tailing.set(env.id, { tail, batcher });
    this.opts.log(`odoo log of ${env.project_slug}/${env.name}: following ${'local' in where ? 'the local log' : `${where.path} on ${where.ssh.host}`}`);
  }

  private end(env: string, why: string): Promise<void> {
    const t = this.tailing.get(env);
    if (!t) return Promise.resolve();
    t.stopping ??= (async () => {
      await t.tail.stop();
      await t.batcher.close().catch(() => {});
      const at = t.tail.position();
      await this.opts.pool.query('select ops.release_odoo_log_tail($1, $2, $3, $4)', [env, this.opts.workerId, at?.source ?? null, at?.offset ?? null]).catch(() => {});
      this.tailing.delete(env);
      this.opts.log(`odoo log ${env}: stopped (${why})`);
    })();
    return t.stopping;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.checking;
    await Promise.all([...this.tailing.keys()].map((env) => this.end(env, 'the worker stops')));
  }
}
