// The viewer's lines, stored compactly: a million lines are a million strings plus three typed arrays
// (time, stream, visible width once wrap asks for it), not a million objects. Line numbers are the run
// log's sequence numbers: the first line's, then one more per line (the host gap-fills by sequence). A ring: past `capacity` the oldest lines are
// dropped (they stay readable in the run's full log, CLI/API); `dropped` counts them, so a line keeps one
// absolute number (dropped + index) for as long as it is held.
import { columns } from './layout.ts';

export interface IncomingLine {
  /** The line's sequence number in the run's log (from 1), when known. */
  seq?: number;
  ts: string;
  stream: string;
  line: string;
}

const NO_TIME = 0xffffffff;
const DIGIT = (s: string, i: number) => s.charCodeAt(i) - 48;

/**
 * The time of day of a line's timestamp in UTC milliseconds (all the viewer shows of it; 4 bytes a line).
 * The server's form (2026-11-25T10:00:00.123Z) is read digit by digit: Date.parse would be a third of
 * the time a million lines take to arrive. Anything else goes through Date.parse; unreadable: NO_TIME.
 */
export function timeOfDay(ts: string): number {
  if (ts.length === 24 && ts.charCodeAt(10) === 84 /* T */ && ts.charCodeAt(23) === 90 /* Z */ && ts.charCodeAt(19) === 46 /* . */) {
    const h = DIGIT(ts, 11) * 10 + DIGIT(ts, 12);
    const m = DIGIT(ts, 14) * 10 + DIGIT(ts, 15);
    const sec = DIGIT(ts, 17) * 10 + DIGIT(ts, 18);
    const ms = DIGIT(ts, 20) * 100 + DIGIT(ts, 21) * 10 + DIGIT(ts, 22);
    const v = ((h * 60 + m) * 60 + sec) * 1000 + ms;
    if (v >= 0 && v < 86_400_000) return v;
  }
  const t = Date.parse(ts);
  return Number.isFinite(t) ? ((t % 86_400_000) + 86_400_000) % 86_400_000 : NO_TIME;
}

export class LineStore {
  readonly capacity: number;
  /** Lines held. Index 0 is the oldest one held. */
  length = 0;
  /** Lines dropped from the front since the last clear (absolute number of index 0). */
  dropped = 0;
  /** Lines of the log before the first one held since the last clear (its sequence number less one). */
  origin = 0;
  private start = 0;
  private texts: string[] = [];
  private times = new Uint32Array(0);
  private stream = new Uint8Array(0);
  private cols = new Uint32Array(0);

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  clear(): void {
    this.length = 0;
    this.dropped = 0;
    this.origin = 0;
    this.start = 0;
    this.texts = [];
    this.times = new Uint32Array(0);
    this.stream = new Uint8Array(0);
    this.cols = new Uint32Array(0);
  }

  /** Appends lines; returns how many old lines were dropped to make room. */
  push(lines: readonly IncomingLine[]): number {
    let dropped = 0;
    if (this.length === 0 && this.dropped === 0 && lines.length && Number.isInteger(lines[0]!.seq) && lines[0]!.seq! > 0) this.origin = lines[0]!.seq! - 1;
    for (const l of lines) {
      let slot: number;
      if (this.length < this.capacity) {
        slot = this.length++;
        if (slot >= this.times.length) this.grow();
      } else {
        slot = this.start;
        this.start = (this.start + 1) % this.capacity;
        this.dropped++;
        dropped++;
      }
      this.texts[slot] = l.line;
      this.times[slot] = timeOfDay(l.ts);
      this.stream[slot] = l.stream === 'stderr' ? 1 : l.stream === 'system' ? 2 : 0;
      this.cols[slot] = 0;
    }
    return dropped;
  }

  private grow(): void {
    const size = Math.min(this.capacity, Math.max(1024, this.times.length * 2));
    const times = new Uint32Array(size);
    times.set(this.times);
    const stream = new Uint8Array(size);
    stream.set(this.stream);
    const cols = new Uint32Array(size);
    cols.set(this.cols);
    this.times = times;
    this.stream = stream;
    this.cols = cols;
  }

  private slot(i: number): number {
    const s = this.start + i;
    return s >= this.capacity ? s - this.capacity : s;
  }

  text(i: number): string {
    return this.texts[this.slot(i)]!;
  }

  /** hh:mm:ss.mmm (UTC, as the server stamps lines), or '' when the line had no readable time. */
  time(i: number): string {
    const ms = this.times[this.slot(i)]!;
    return ms === NO_TIME ? '' : new Date(ms).toISOString().slice(11, 23);
  }

  isStderr(i: number): boolean {
    return this.stream[this.slot(i)] === 1;
  }

  /** A line the server wrote itself (an attempt starting, a retry, a cancel), not the run's output. */
  isSystem(i: number): boolean {
    return this.stream[this.slot(i)] === 2;
  }

  /** The line's number in the run's log (1 for the first line the run wrote). */
  number(i: number): number {
    return this.origin + this.dropped + i + 1;
  }

  /** The line's width in columns as shown (escapes removed, tabs expanded): computed when first asked (wrap). */
  columns(i: number): number {
    const slot = this.slot(i);
    let c = this.cols[slot]!;
    // Stored plus one: 0 is "not computed yet".
    if (c === 0) this.cols[slot] = c = columns(this.texts[slot]!) + 1;
    return c - 1;
  }

  /** Every line held, oldest first. */
  all(): string[] {
    const out = new Array<string>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.text(i);
    return out;
  }
}
