// Where each line sits in the virtual scroll area. Without wrap every line is one row of ROW pixels.
// With wrap a line takes ceil(width / columns per row) rows: its width in columns is known from its text
// (the font is monospace), so heights are computed, never measured, and a prefix sum of rows per line
// turns a scroll position into the first line in view by binary search.
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
 * Rows a line takes wrapped as the viewer wraps it (white-space: pre-wrap; overflow-wrap: anywhere):
 * at spaces, a word that does not fit starting on the next row, and only a word longer than a whole row
 * broken inside. `shown` is the text without escapes; `lead` columns (the time) come before it and
 * `extra` columns (the traceback links) after it.
 * The browser may find other break points (after hyphens, say): the viewer measures the lines it draws
 * and corrects this estimate, so it only has to be close for lines never drawn.
 */
export function wordRows(shown: string, perRow: number, extra = 0, lead = 0): number {
  const width = Math.max(1, perRow);
  let rows = 1;
  let col = lead;
  let i = 0;
  const n = shown.length;
  while (i < n) {
    // A word: up to the next space or tab; then its spaces, which hang at the end of a row.
    let w = 0;
    for (; i < n; i++) {
      const c = shown.charCodeAt(i);
      if (c === 32 || c === 9) break;
      w++;
    }
    if (w > 0) {
      if (col + w <= width) col += w;
      else if (w <= width) {
        rows++;
        col = w;
      } else {
        if (col > 0) rows++;
        rows += Math.ceil(w / width) - 1;
        col = w - (Math.ceil(w / width) - 1) * width;
      }
    }
    for (; i < n; i++) {
      const c = shown.charCodeAt(i);
      if (c === 32) col++;
      else if (c === 9) col += 8 - (col % 8);
      else break;
    }
  }
  if (extra > 0) {
    if (col + extra > width) rows += Math.ceil((col + extra - width) / width);
  }
  return rows;
}

/**
 * Prefix sums of rows per line: `top(i)` is the row line i starts at, `total` the rows of all lines, and
 * `lineAt(row)` the line that covers a row. Appending is O(lines appended); anything else rebuilds.
 */
export class RowIndex {
  private sums = new Float64Array(1);
  length = 0;

  /** Rebuilds for `count` lines of `rowsOf(i)` rows each. */
  build(count: number, rowsOf: (i: number) => number): void {
    this.length = 0;
    if (this.sums.length < count + 1) this.sums = new Float64Array(count + 1);
    this.sums[0] = 0;
    this.append(count, rowsOf, 0);
  }

  /** Adds lines from..count-1 (line indexes), `rowsOf(i)` rows each. */
  append(count: number, rowsOf: (i: number) => number, from = this.length): void {
    if (this.sums.length < count + 1) {
      const grown = new Float64Array(Math.max(count + 1, this.sums.length * 2));
      grown.set(this.sums.subarray(0, this.length + 1));
      this.sums = grown;
    }
    for (let i = from; i < count; i++) this.sums[i + 1] = this.sums[i]! + rowsOf(i);
    this.length = count;
  }

  get total(): number {
    return this.sums[this.length]!;
  }

  top(i: number): number {
    return this.sums[Math.max(0, Math.min(i, this.length))]!;
  }

  /** The line covering `row` (clamped to 0..length-1; 0 when empty). */
  lineAt(row: number): number {
    if (this.length === 0 || row <= 0) return 0;
    if (row >= this.total) return this.length - 1;
    let lo = 0;
    let hi = this.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.sums[mid]! <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
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
