import type pg from 'pg';
import { Redactor } from './redact.ts';

export interface Line {
  ts: string;
  stream: string;
  line: string;
}

export interface LogBatcherOptions {
  /** Flush when this many lines wait. */
  maxBatch?: number;
  /** Flush at least this often while lines wait. */
  intervalMs?: number;
  /** Writers are held back (log() resolves late) while more than this many lines wait. */
  highWater?: number;
}

/**
 * Collects a run's log lines and writes them with ops.append_run_logs in batches: one round trip per
 * batch rather than per line, and a bounded buffer so a chatty step waits instead of growing memory.
 */
export class LogBatcher {
  private buffer: Line[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private waiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly intervalMs: number;
  private readonly highWater: number;
  /** Set when the database says this worker no longer holds the run. */
  lost = false;
  /** The run's known secrets: lines are redacted before they are buffered. */
  readonly redactor = new Redactor();

  private readonly pool: pg.Pool;
  private readonly runId: number;
  private readonly worker: string;

  constructor(pool: pg.Pool, runId: number, worker: string, opts: LogBatcherOptions = {}) {
    this.pool = pool;
    this.runId = runId;
    this.worker = worker;
    this.maxBatch = opts.maxBatch ?? 1000;
    this.intervalMs = opts.intervalMs ?? 200;
    this.highWater = opts.highWater ?? 5_000;
  }

  log(line: string, stream = 'stdout'): Promise<void> {
    if (this.lost) return Promise.resolve();
    // PostgreSQL text cannot hold NUL; a binary-ish line must not fail the whole batch.
    const clean = line.includes('\0') ? line.replaceAll('\0', '\uFFFD') : line;
    this.buffer.push({ ts: new Date().toISOString(), stream, line: this.redactor.apply(clean) });
    if (this.buffer.length >= this.maxBatch && !this.flushing) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
    if (this.buffer.length < this.highWater) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Registers a secret: from now on it is replaced by [redacted] in this run's lines, including lines
   * still waiting in the buffer (lines already written cannot be helped: register before logging).
   */
  redact(secret: string | null | undefined): void {
    if (!this.redactor.add(secret)) return;
    for (const l of this.buffer) l.line = this.redactor.apply(l.line);
  }

  /** Writes everything buffered so far. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    // One drain loop at a time, and every caller shares it. (Each log() past a full batch used to start
    // its own waiting flush: thousands of them woke on every write, and a long run slowed to a crawl.)
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Writes batches until the buffer is empty: lines that arrive during a write form the next batch. */
  private async drain(): Promise<void> {
    while (this.buffer.length > 0 && !this.lost) {
      await this.write(this.buffer.splice(0, this.maxBatch));
      if (this.buffer.length < this.highWater || this.lost) this.waiters.splice(0).forEach((w) => w());
    }
  }

  private async write(batch: Line[]): Promise<void> {
    const { rows } = await this.pool.query('select ops.append_run_logs($1, $2, $3) as seq', [this.runId, this.worker, JSON.stringify(batch)]);
    if (rows[0].seq === null) {
      this.lost = true;
      this.buffer = [];
    }
  }

  /**
   * Stops batching and hands back what was not written yet, for the caller to write in its own
   * transaction (the worker's finish). Waits for a write in flight first, so order is kept.
   */
  async takeRemaining(): Promise<Line[]> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    // Keep the last batch small enough for one call; write the rest the usual way.
    while (this.buffer.length > this.maxBatch) await this.flush();
    this.waiters.splice(0).forEach((w) => w());
    return this.buffer.splice(0);
  }

  async close(): Promise<void> {
    await this.flush();
    this.waiters.splice(0).forEach((w) => w());
  }
}
