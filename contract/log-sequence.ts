// Puts a run's log lines in order exactly once, whatever mix of history pages (API, after=seq) and
// live batches (Realtime) delivers them: duplicates are dropped, lines after a gap wait until the gap
// is filled. Shared by every viewer (CLI, extension, webview).
import type { LogLine } from './index.ts';

export class LogSequencer<L extends { seq: number } = LogLine> {
  /** The last sequence number handed out: ask the API for lines after it to fill a gap. */
  last: number;
  /** The highest sequence number known to exist (announced by a live batch). */
  known: number;
  private readonly waiting = new Map<number, L>();
  private readonly emit: (lines: L[]) => void;

  constructor(emit: (lines: L[]) => void, after = 0) {
    this.emit = emit;
    this.last = after;
    this.known = after;
  }

  /** Lines held back because an earlier one is missing. */
  get pending(): number {
    return this.waiting.size;
  }

  /**
   * True when lines are known to exist that were not handed out: a reconnect lost some, or a live batch
   * carried only its newest lines. Fetch history after `last`.
   */
  get hasGap(): boolean {
    return this.waiting.size > 0 || this.known > this.last;
  }

  accept(lines: readonly L[]): void {
    for (const l of lines) {
      if (l.seq > this.last) this.waiting.set(l.seq, l);
      if (l.seq > this.known) this.known = l.seq;
    }
    const ready: L[] = [];
    for (let next = this.waiting.get(this.last + 1); next; next = this.waiting.get(this.last + 1)) {
      this.waiting.delete(next.seq);
      this.last = next.seq;
      ready.push(next);
    }
    if (ready.length) this.emit(ready);
  }

  /** A live batch: its lines, and the knowledge that everything up to its last_seq exists. */
  acceptBroadcast(b: { last_seq: number; lines: readonly L[]; [more: string]: unknown }): void {
    if (b.last_seq > this.known) this.known = b.last_seq;
    this.accept(b.lines);
  }
}
