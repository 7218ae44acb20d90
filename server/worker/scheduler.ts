// The daily schedule (backups of production, retention everywhere), asked of the database every
// few minutes by every server that runs a worker: ops.schedule_daily_runs queues each day's runs once,
// whichever servers ask, so there is no leader to elect and a server down for a while catches up.
import type pg from 'pg';
import { asUser, SERVICE_CLAIMS } from '../db/session.ts';

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private readonly pool: pg.Pool;
  private readonly intervalMs: number;
  private readonly log: (m: string) => void;

  constructor(pool: pg.Pool, intervalMs: number, log: (m: string) => void) {
    this.pool = pool;
    this.intervalMs = intervalMs;
    this.log = log;
  }

  /** Queues what is due now; returns how many runs it created. */
  async tick(day?: string): Promise<number> {
    return asUser(this.pool, SERVICE_CLAIMS, async (c) =>
      (await c.query('select ops.schedule_daily_runs(coalesce($1::date, (now() at time zone \'UTC\')::date)) as n', [day ?? null])).rows[0].n as number);
  }

  start(): void {
    const run = () =>
      this.tick().then(
        (n) => n > 0 && this.log(`scheduler: queued ${n} daily run(s)`),
        (err) => this.log(`scheduler: ${(err as Error).message}`),
      );
    void run();
    this.timer = setInterval(run, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
