import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { LOG_ANNOUNCE_GAP_MS } from '../realtime/budget.ts';
import { Redactor } from './redact.ts';

export interface Line {
  ts: string;
  stream: string;
  line: string;
}

export interface LogBatcherOptions {
  /** Flush when this many lines wait; also the most one write carries. */
  maxBatch?: number;
  /** Flush at least this often while lines wait. */
  intervalMs?: number;
  /** Writes start at least this far apart. */
  minGapMs?: number;
  /**
   * Realtime announcements of the run's new lines start at least this far apart (the Realtime budget,
   * server/realtime/budget.ts): writes in between store their lines unannounced, and what is left is
   * announced this long after the last announcement, by the next write or on its own.
   */
  announceGapMs?: number;
  /** Writers are held back (log() resolves late) while more than this many lines wait. */
  highWater?: number;
}

/**
 * Collects a run's log lines and writes them with ops.append_run_logs in batches: one round trip per
 * batch rather than per line, at most one write per minGapMs, at most one Realtime announcement per
 * announceGapMs (4 messages a second per run, however fast it prints), and a bounded buffer so a chatty
 * step waits instead of growing memory.
 */
export class LogBatcher {
  private buffer: Line[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private waiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly intervalMs: number;
  private readonly minGapMs: number;
  private readonly highWater: number;
  private lastWriteAt = 0;
  private readonly announceGapMs: number;
  private lastAnnounceAt = -Infinity;
  /** Lines were written without being announced. */
  private unannounced = false;
  /** Set by the tail timer: the next write announces, even with no lines. */
  private announceNow = false;
  private tail: NodeJS.Timeout | undefined;
  /** Handed over to the finish (takeRemaining): nothing more is written or announced. */
  private done = false;
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
    // A full batch of typical lines (~120 bytes) is ~0.7 MB: bounded memory, big enough that a flood of
    // 50,000 lines a second needs ~8 writes a second, small enough that one write stays under ~100 ms
    // (10,000 made the writes so long that live lines arrived later and viewers fell behind).
    this.maxBatch = opts.maxBatch ?? 6_000;
    this.intervalMs = opts.intervalMs ?? 200;
    this.minGapMs = opts.minGapMs ?? 100;
    this.announceGapMs = opts.announceGapMs ?? LOG_ANNOUNCE_GAP_MS;
    this.highWater = opts.highWater ?? this.maxBatch;
  }

  /** `ts`: when the line was written, if its source says (Odoo's log does); now otherwise. */
  log(line: string, stream = 'stdout', ts?: string): Promise<void> {
    if (this.lost) return Promise.resolve();
    // PostgreSQL text cannot hold NUL; a binary-ish line must not fail the whole batch.
    const clean = line.includes('\0') ? line.replaceAll('\0', '\uFFFD') : line;
    this.buffer.push({ ts: ts ?? new Date().toISOString(), stream, line: this.redactor.apply(clean) });
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

  /** Shows `label` instead of `path` (a directory of the worker's) in this run's lines and error. */
  alias(path: string, label: string): void {
    this.redactor.alias(path, label);
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

  /**
   * Writes batches until the buffer is empty (lines that arrive during a write form the next batch),
   * and the announcement the tail timer asked for, lines or not.
   */
  private async drain(): Promise<void> {
    while ((this.buffer.length > 0 || this.announceNow) && !this.lost && !this.done) {
      const wait = this.lastWriteAt + this.minGapMs - performance.now();
      // Pacing: lines arriving meanwhile join this batch (up to maxBatch, then their writers wait).
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const now = performance.now();
      this.lastWriteAt = now;
      const announce = this.announceNow || now - this.lastAnnounceAt >= this.announceGapMs;
      this.announceNow = false;
      // Counted from the decision: a tail timer that fires while this write is on its way must see it.
      if (announce) this.lastAnnounceAt = now;
      await this.write(this.buffer.splice(0, this.maxBatch), announce);
      if (announce) {
        this.unannounced = false;
        clearTimeout(this.tail);
        this.tail = undefined;
      } else {
        this.unannounced = true;
        this.armTail();
      }
      if (this.buffer.length < this.highWater || this.lost) this.waiters.splice(0).forEach((w) => w());
    }
  }

  /** Announces unannounced lines once the gap since the last announcement has passed, if no write has. */
  private armTail(): void {
    this.tail ??= setTimeout(() => {
      this.tail = undefined;
      if (!this.unannounced || this.done || this.lost) return;
      // A write that announces is on its way (it covers these lines): the gap runs from it.
      if (performance.now() - this.lastAnnounceAt < this.announceGapMs) return this.armTail();
      this.announceNow = true;
      void this.flush().catch(() => {}); // a failing write fails the next log() or flush() as well
    }, Math.max(0, this.lastAnnounceAt + this.announceGapMs - performance.now()));
  }

  protected async write(batch: Line[], announce: boolean): Promise<void> {
    // Three text arrays: the cheapest form for the database to take apart (no JSON parsing).
    const { rows } = await this.pool.query('select ops.append_run_logs($1, $2, $3::text[], $4::text[], $5::text[], $6) as seq', [
      this.runId, this.worker, batch.map((l) => l.ts), batch.map((l) => l.stream), batch.map((l) => l.line), announce,
    ]);
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
    // The finish announces whatever is unannounced (ops.announce_run_log_at_end), these lines too.
    this.done = true;
    clearTimeout(this.tail);
    this.tail = undefined;
    this.waiters.splice(0).forEach((w) => w());
    return this.buffer.splice(0);
  }

  /** Writes everything buffered and announces whatever is not announced yet. */
  async close(): Promise<void> {
    // Each round ends announced, unless more lines came meanwhile (then they are announced next round).
    while (!this.lost && !this.done && (this.buffer.length > 0 || this.unannounced)) {
      this.announceNow = true;
      await this.flush();
    }
    clearTimeout(this.tail);
    this.tail = undefined;
    this.waiters.splice(0).forEach((w) => w());
  }
}
