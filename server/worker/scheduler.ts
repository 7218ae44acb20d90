// The daily schedule (backups of production, retention everywhere), asked of the database every
// few minutes by every server that runs a worker: ops.schedule_daily_runs queues each day's runs once,
// whichever servers ask, so there is no leader to elect and a server down for a while catches up.
// The same ticks queue the weekly sampled verify (ops.schedule_weekly_verifies), look for missed daily
// backups (ops.check_missed_backups) and, hourly, for backup stores filling up (alerts/store-usage.ts).
import type pg from 'pg';
import { asUser, SERVICE_CLAIMS } from '../db/session.ts';
import { checkStores, type Thresholds, type WatchedStore } from '../alerts/store-usage.ts';

export interface SchedulerWatch {
  /** The backup stores this server's worker writes to. */
  stores?: () => WatchedStore[];
  thresholds?: Thresholds;
}

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private readonly pool: pg.Pool;
  private readonly intervalMs: number;
  private readonly log: (m: string) => void;
  private readonly watch: SchedulerWatch;
  private storesCheckedAt = 0;

  constructor(pool: pg.Pool, intervalMs: number, log: (m: string) => void, watch: SchedulerWatch = {}) {
    this.pool = pool;
    this.intervalMs = intervalMs;
    this.log = log;
    this.watch = watch;
  }

  /** Queues what is due now; returns how many runs it created. */
  async tick(day?: string): Promise<number> {
    return asUser(this.pool, SERVICE_CLAIMS, async (c) =>
      (await c.query('select ops.schedule_daily_runs(coalesce($1::date, (now() at time zone \'UTC\')::date)) as n', [day ?? null])).rows[0].n as number);
  }

  /** Queues this ISO week's verify of each environment's newest backup and of a random older one; returns how many. */
  async verifyTick(day?: string): Promise<number> {
    return asUser(this.pool, SERVICE_CLAIMS, async (c) =>
      (await c.query('select ops.schedule_weekly_verifies(coalesce($1::date, (now() at time zone \'UTC\')::date)) as n', [day ?? null])).rows[0].n as number);
  }

  /** Alerts for production environments without a daily backup for 26 hours; returns how many were raised. */
  async missedTick(): Promise<number> {
    return asUser(this.pool, SERVICE_CLAIMS, async (c) => (await c.query('select ops.check_missed_backups() as n')).rows[0].n as number);
  }

  /** Alerts for stores filling up; returns how many were raised. */
  async storesTick(): Promise<number> {
    this.storesCheckedAt = Date.now();
    return checkStores(this.pool, this.watch.stores?.() ?? [], this.watch.thresholds, this.log);
  }

  start(): void {
    const run = async () => {
      const steps: [string, () => Promise<number>, (n: number) => string][] = [
        ['daily runs', () => this.tick(), (n) => `queued ${n} daily run(s)`],
        ['weekly verify', () => this.verifyTick(), (n) => `queued ${n} verify run(s) of this week's sample`],
        ['missed backups', () => this.missedTick(), (n) => `${n} production environment(s) missed their daily backup: alerted`],
        // statfs is cheap, an object store's listing is not: hourly is soon enough for a store filling up.
        ['backup stores', () => (Date.now() - this.storesCheckedAt >= 3_600_000 ? this.storesTick() : Promise.resolve(0)), (n) => `${n} alert(s) about backup stores filling up`],
      ];
      for (const [what, step, said] of steps) {
        await step().then((n) => n > 0 && this.log(`scheduler: ${said(n)}`), (err) => this.log(`scheduler (${what}): ${(err as Error).message}`));
      }
    };
    void run();
    this.timer = setInterval(() => void run(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
