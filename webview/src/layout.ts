// Where each line sits in the virtual scroll area. Without wrap every line is one row of ROW pixels.
// With wrap a line is first estimated at ceil(width / columns per row) rows: its width in columns is known
// from its text (the font is monospace), so a million lines are placed without laying any out. The viewer
// wraps at word boundaries, which can take more rows: the lines it draws are measured and their rows set
// (RowIndex.set), so what is on screen is exact and the estimate only places lines never drawn.
import { fileRefs } from './traceback.ts';

const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;

/** The width of a line as the viewer shows it, in columns: escapes removed, tabs to the next stop of 8. */
export function columns(line: string): number {
  let text = line;
  if (text.includes('\x1b')) text = text.replace(ESCAPES, '');
  let width = text.length;
  if (text.includes('\t')) {
    width = 0;
    for (let i = 0; i < text.length; i++) width = text.charCodeAt(i) === 9 ? width + 8 - (width % 8) : width + 1;
  }
  // Traceback lines get a " ↗ dir/file.py:42" link after the text (see main.ts row()).
  if (text.includes('File "')) for (const ref of fileRefs(line)) width += linkText(ref.path, ref.line).length;
  return width;
}

/** The text of the link the viewer appends for a traceback file reference. */
export function linkText(path: string, line: number): string {
  return ` ↗ ${path.split('/').slice(-2).join('/')}:${line}`;
}

/** Rows a line of `cols` columns takes when wrapped at `perRow` columns anywhere (at least one). */
export function rowsFor(cols: number, perRow: number): number {
  return cols <= perRow ? 1 : Math.ceil(cols / Math.max(1, perRow));
}

/**
 * Rows per line as a Fenwick tree (binary indexed tree): `top(i)` is the row line i starts at, `total`
 * the rows of all lines, `lineAt(row)` the line that covers a row, and `set(i, rows)` changes one line's
 * rows, each in O(log n): the viewer corrects the lines it draws (measured) without redoing a million
 * prefix sums. Building is O(n); appending O(log n) a line.
 */
export class RowIndex {
  // 1-based: tree[p] holds the rows of lines (p - lowbit(p), p].
  private tree = new Float64Array(1);
  length = 0;

  /** Rebuilds for `count` lines of `rowsOf(i)` rows each. */
  build(count: number, rowsOf: (i: number) => number): void {
    if (this.tree.length < count + 1) this.tree = new Float64Array(count + 1);
    else this.tree.fill(0, 0, count + 1);
    const t = this.tree;
    // One pass: a node is complete once the nodes below it have added themselves, which they did first.
    for (let p = 1; p <= count; p++) {
      t[p]! += rowsOf(p - 1);
      const q = p + (p & -p);
      if (q <= count) t[q]! += t[p]!;
    }
    this.length = count;
  }

  /** Adds lines length..count-1 (line indexes), `rowsOf(i)` rows each. */
  append(count: number, rowsOf: (i: number) => number): void {
    if (this.tree.length < count + 1) {
      const grown = new Float64Array(Math.max(count + 1, this.tree.length * 2));
      grown.set(this.tree.subarray(0, this.length + 1));
      this.tree = grown;
    }
    for (let i = this.length; i < count; i++) {
      const p = i + 1;
      // tree[p] covers (p - lowbit(p), p]: this line plus the lines before it in that range.
      this.tree[p] = rowsOf(i) + this.prefix(p - 1) - this.prefix(p - (p & -p));
      this.length = p;
    }
  }

  /** Line i now takes `rows` rows. */
  set(i: number, rows: number): void {
    if (i < 0 || i >= this.length) return;
    const delta = rows - (this.prefix(i + 1) - this.prefix(i));
    if (delta === 0) return;
    for (let p = i + 1; p <= this.length; p += p & -p) this.tree[p]! += delta;
  }

  /** Rows of lines 0..n-1. */
  private prefix(n: number): number {
    let sum = 0;
    for (let p = n; p > 0; p -= p & -p) sum += this.tree[p]!;
    return sum;
  }

  get total(): number {
    return this.prefix(this.length);
  }

  top(i: number): number {
    return this.prefix(Math.max(0, Math.min(i, this.length)));
  }

  /** The line covering `row` (clamped to 0..length-1; 0 when empty). */
  lineAt(row: number): number {
    if (this.length === 0 || row <= 0) return 0;
    // The most lines whose rows all lie at or before `row`: that count is the index of the covering line.
    let pos = 0;
    let rest = row;
    let step = 1;
    while (step * 2 <= this.length) step *= 2;
    for (; step > 0; step >>= 1) {
      const q = pos + step;
      if (q <= this.length && this.tree[q]! <= rest) {
        pos = q;
        rest -= this.tree[q]!;
      }
    }
    return Math.min(pos, this.length - 1);
  }
}

/**
 * Browsers cap an element's height (Chromium near 33.5 million pixels): past MAX_SCROLL the spacer is
 * capped and the scroll position is scaled, so the scrollbar's full travel still covers every line.
 */
export const MAX_SCROLL = 30_000_000;

/** The spacer's height in pixels for a virtual content height. */
export function scrollHeight(virtual: number): number {
  return Math.min(virtual, MAX_SCROLL);
}

/** Virtual pixels per scrolled pixel: 1 unless the content is taller than MAX_SCROLL. */
export function scrollScale(virtual: number, viewport: number): number {
  if (virtual <= MAX_SCROLL) return 1;
  return (virtual - viewport) / Math.max(1, MAX_SCROLL - viewport);
}
