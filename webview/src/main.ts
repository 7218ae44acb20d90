// The run log viewer (webview): lines arrive from the extension host in order (it follows the run over
// Realtime with history and gap fill), are kept in a compact ring (lines.ts) and drawn virtually (only
// the rows in view exist in the DOM), so a million lines stay responsive. With wrap on, a line's height is
// estimated from its width (monospace: layout.ts) and a Fenwick tree places it; the lines drawn are
// measured and their rows corrected, since the browser wraps at word boundaries. With "filter" on only
// the matching lines are laid out. Text is always set as textContent: a line holding <script> or
// <img onerror> stays text; links are <a href="#"> whose click posts a message to the host. Controls are
// @vscode-elements; colours VS Code's. While the host's live connection is down a banner says so.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import { levelOf, parseAnsi, type Segment } from './ansi.ts';
import { attemptStart } from './attempts.ts';
import { linkText, RowIndex, rowsFor, scrollHeight, scrollScale } from './layout.ts';
import { LineStore, type IncomingLine } from './lines.ts';
import { findLinks, type Link } from './links.ts';
import { compile, type Matcher } from './search.ts';
import { fileRefs } from './traceback.ts';
import { readBuild, renderBuild } from './build.ts';

type ToViewer =
  | { type: 'lines'; lines: IncomingLine[] }
  | { type: 'status'; status: string; title: string }
  | { type: 'reset' }
  | { type: 'connection'; state: 'live' | 'reconnecting' | 'done'; detail?: string }
  | { type: 'build' };
interface State {
  runId?: number;
  wrap?: boolean;
}

declare function acquireVsCodeApi(): { postMessage(m: unknown): void; setState(s: unknown): void; getState(): unknown };
const vscode = acquireVsCodeApi();

const ROW = 18;
// Rows drawn above and below the ones in view.
const OVERSCAN = 20;
// Bounded memory: the newest lines are kept; older ones can be read in the run's full log (CLI/API).
const MAX_LINES = 1_000_000;
const TIME_COLUMNS = 'hh:mm:ss.mmm '.length;
const store = new LineStore(MAX_LINES);
const runId = (window as unknown as { __odooopsRun?: number }).__odooopsRun;
const saved = (vscode.getState() ?? {}) as State;
let follow = true;
let showTimes = false;
let wrap = saved.wrap === true;
// Absolute line numbers (store.dropped + index) of the lines matching the search, ascending.
let matches: number[] = [];
let current = -1;
let matcher: Matcher | null = null;
const options = { query: '', regex: false, caseSensitive: false };
// Only the matching lines are shown (when there is a search).
let filter = false;
// With wrap on: rows per shown line and their prefix sums; columns that fit in one row; rows measured
// where the estimate was wrong (absolute line number → rows), until the width changes.
const index = new RowIndex();
let perRow = 0;
let measured = new Map<number, number>();
// Digits of the line-number gutter.
let digits = 0;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const viewport = $('viewport');
const spacer = $('spacer');
const rows = $('rows');
const statusEl = $('status');
const connEl = $('connection');
const banner = $('banner');
const checkbox = (id: string) => $<HTMLElement & { checked: boolean }>(id);
const gutterEl = document.createElement('div');
gutterEl.id = 'gutter';
gutterEl.setAttribute('aria-hidden', 'true');

// What is shown: every line, or with the filter on only the matching ones. Positions k are in that list.
const filtering = () => filter && matcher !== null;
const shownCount = () => (filtering() ? matches.length : store.length);
const lineOf = (k: number) => (filtering() ? matches[k]! - store.dropped : k);

/** Rows a line takes with wrap on: measured if it was drawn, else estimated from its width. */
function rowsOfLine(i: number): number {
  const m = measured.size ? measured.get(store.dropped + i) : undefined;
  return m ?? rowsFor(store.columns(i) + (showTimes ? TIME_COLUMNS : 0), perRow);
}
const rowsOfShown = (k: number) => rowsOfLine(lineOf(k));

// Geometry in rows: with wrap off every line is one row and the index is not kept.
const topRow = (k: number) => (wrap ? index.top(k) : k);
const totalRows = () => (wrap ? index.total : shownCount());
const shownAtRow = (r: number) => (wrap ? index.lineAt(r) : Math.max(0, Math.min(shownCount() - 1, Math.floor(r))));

/** The gutter fits the largest line number held; a change of width re-lays out wrapped lines. */
function gutter(): boolean {
  const d = Math.max(3, String(store.number(Math.max(0, store.length - 1))).length);
  if (d === digits) return false;
  digits = d;
  rows.style.setProperty('--digits', String(d));
  return true;
}

/** Columns of the monospace font that fit in a row (the rows' width less their padding and gutter). */
function measure(): void {
  const probe = document.createElement('div');
  probe.className = 'line';
  probe.style.position = 'absolute';
  probe.style.visibility = 'hidden';
  probe.style.whiteSpace = 'pre';
  const text = document.createElement('span');
  text.textContent = 'M'.repeat(200);
  probe.appendChild(text);
  rows.appendChild(probe);
  const probed = text.getBoundingClientRect().width;
  const style = getComputedStyle(probe);
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  probe.remove();
  // A hidden panel has no layout yet: 8 px is a plausible width until the ResizeObserver says more.
  const charWidth = probed > 0 ? probed / 200 : 8;
  perRow = Math.max(10, Math.floor((viewport.clientWidth - (probed > 0 ? padding : 16 + 8 * digits)) / charWidth));
}

function relayout(): void {
  document.body.classList.toggle('wrap', wrap);
  measured = new Map();
  if (!wrap) return;
  measure();
  index.build(shownCount(), rowsOfShown);
}

/**
 * Draws the lines in view; with wrap on, measures them and corrects the layout where it was off. Every
 * read of the layout comes before the first change to the DOM (one layout a frame, not two).
 */
function render(): void {
  const virtual = totalRows() * ROW;
  spacer.style.height = `${scrollHeight(virtual)}px`;
  const height = viewport.clientHeight;
  const scale = scrollScale(virtual, height);
  const top = viewport.scrollTop * scale;
  const inView = shownAtRow(top / ROW);
  const bottom = shownAtRow((top + height) / ROW) + 1;
  const first = Math.max(0, inView - OVERSCAN);
  const last = Math.min(shownCount(), bottom + OVERSCAN);
  place(first);
  const frag = document.createDocumentFragment();
  for (let k = first; k < last; k++) frag.appendChild(row(lineOf(k)));
  numbers(first, inView, Math.min(last, bottom));
  frag.appendChild(gutterEl);
  rows.replaceChildren(frag);
  if (!wrap || viewport.clientWidth === 0) return;
  let changed = false;
  let above = 0;
  const drawn = rows.children;
  for (let k = first; k < last; k++) {
    const h = (drawn[k - first] as HTMLElement).offsetHeight;
    if (h <= 0) continue;
    const got = Math.max(1, Math.round(h / ROW));
    const had = rowsOfShown(k);
    if (got === had) continue;
    measured.set(store.dropped + lineOf(k), got);
    index.set(k, got);
    changed = true;
    if (k < inView) above += got - had;
  }
  if (!changed) return;
  // What was in view stays in view: the rows gained or lost above it move the scroll position. The rows
  // drawn stay (they already stand at their real heights); where they start follows the scroll position.
  spacer.style.height = `${scrollHeight(totalRows() * ROW)}px`;
  if (follow) viewport.scrollTop = viewport.scrollHeight;
  else if (above) viewport.scrollTop += (above * ROW) / scrollScale(totalRows() * ROW, viewport.clientHeight);
  if (follow) followedTop = viewport.scrollTop;
  place(first);
  numbers(first, inView, Math.min(last, bottom));
}

/** Puts the drawn rows, from line `first` on, where the scroll position shows them. */
function place(first: number): void {
  const scale = scrollScale(totalRows() * ROW, viewport.clientHeight);
  // Relative to the scroll position, so the same code serves a scaled scroll area.
  rows.style.transform = `translateY(${viewport.scrollTop + topRow(first) * ROW - viewport.scrollTop * scale}px)`;
}

/**
 * The line numbers of the lines in view (from..to-1 of the drawn first..), as one text node in a gutter
 * beside them: one element, not one per line, and none for the overscan rows (each number is text to lay
 * out: a frame of a million-line log stays as fast as without numbers). A wrapped line's number is
 * followed by as many empty rows as it takes. Not in the lines' text, so neither copied nor searched.
 */
function numbers(first: number, from: number, to: number): void {
  let text = '';
  for (let k = from; k < to; k++) {
    text += `${k > from ? '\n' : ''}${store.number(lineOf(k))}`;
    if (wrap) for (let r = rowsOfShown(k); r > 1; r--) text += '\n';
  }
  gutterEl.style.top = `${(topRow(from) - topRow(first)) * ROW}px`;
  gutterEl.textContent = text;
}

function styleSpan(span: HTMLElement, seg: Segment): void {
  if (typeof seg.fg === 'number') span.classList.add(`fg${seg.fg}`);
  else if (seg.fg) span.style.color = seg.fg;
  if (typeof seg.bg === 'number') span.classList.add(`bg${seg.bg}`);
  else if (seg.bg) span.style.backgroundColor = seg.bg;
  if (seg.bold) span.style.fontWeight = 'bold';
  if (seg.italic) span.style.fontStyle = 'italic';
  if (seg.underline) span.style.textDecoration = 'underline';
}

function linkElement(link: Link): HTMLAnchorElement {
  const a = document.createElement('a');
  // Never the address itself: a click posts it to the host, which opens http(s) addresses only.
  a.href = '#';
  a.className = link.kind === 'url' ? 'url' : 'file';
  a.addEventListener('click', (e) => {
    e.preventDefault();
    if (link.kind === 'url') vscode.postMessage({ type: 'openUrl', url: link.url });
    else vscode.postMessage({ type: 'open', path: link.path, line: link.line });
  });
  return a;
}

/**
 * The line's text as spans: its colour segments, cut where a link or a search match begins or ends;
 * spans inside a link go into its <a>, matches get class "hit".
 */
function appendText(div: HTMLElement, segs: Segment[], shown: string): void {
  const links = shown.includes(':') ? findLinks(shown) : [];
  const hits = matcher ? matcher.ranges(shown) : [];
  if (!links.length && !hits.length) {
    for (const seg of segs) {
      const span = document.createElement('span');
      span.textContent = seg.text;
      styleSpan(span, seg);
      div.appendChild(span);
    }
    return;
  }
  const cuts = new Set<number>();
  for (const l of links) cuts.add(l.start).add(l.end);
  for (const [s, e] of hits) cuts.add(s).add(e);
  let at = 0;
  let li = 0;
  let hi = 0;
  let anchor: HTMLAnchorElement | null = null;
  for (const seg of segs) {
    const segEnd = at + seg.text.length;
    let from = at;
    while (from < segEnd) {
      let to = segEnd;
      for (const c of cuts) if (c > from && c < to) to = c;
      while (li < links.length && links[li]!.end <= from) li++;
      while (hi < hits.length && hits[hi]![1] <= from) hi++;
      const link = li < links.length && links[li]!.start <= from ? links[li]! : null;
      const hit = hi < hits.length && hits[hi]![0] <= from;
      const span = document.createElement('span');
      span.textContent = seg.text.slice(from - at, to - at);
      styleSpan(span, seg);
      if (hit) span.classList.add('hit');
      if (link) {
        if (!anchor || anchor.dataset.start !== String(link.start)) {
          anchor = linkElement(link);
          anchor.dataset.start = String(link.start);
          div.appendChild(anchor);
        }
        anchor.appendChild(span);
      } else {
        anchor = null;
        div.appendChild(span);
      }
      from = to;
    }
    at = segEnd;
  }
}

function row(i: number): HTMLElement {
  const text = store.text(i);
  const div = document.createElement('div');
  const abs = store.dropped + i;
  const system = store.isSystem(i);
  div.className = `line ${levelOf(text) ?? ''}${store.isStderr(i) ? ' stderr' : ''}${system ? ' system' : ''}${matches[current] === abs ? ' current' : ''}`;
  const attempt = system ? attemptStart('system', text) : null;
  if (attempt) {
    // A separator: each attempt's lines start under a rule that names it.
    div.classList.add('attempt');
    div.dataset.attempt = `Attempt ${attempt.attempt} of ${attempt.of}`;
  }
  if (showTimes) {
    const t = document.createElement('span');
    t.className = 'ts';
    t.textContent = `${store.time(i)} `;
    div.appendChild(t);
  }
  const segs = parseAnsi(text);
  appendText(div, segs, segs.length === 1 ? segs[0]!.text : segs.map((s) => s.text).join(''));
  if (text.includes('File "')) {
    for (const ref of fileRefs(text)) {
      const a = linkElement({ start: ref.start, end: ref.end, kind: 'file', path: ref.path, line: ref.line });
      a.textContent = linkText(ref.path, ref.line);
      div.appendChild(a);
    }
  }
  return div;
}

let scheduled = false;
// The scroll position following last set.
let followedTop = 0;
function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    if (follow) {
      // The spacer first, so that the bottom is the bottom of every line.
      spacer.style.height = `${scrollHeight(totalRows() * ROW)}px`;
      viewport.scrollTop = viewport.scrollHeight;
      followedTop = viewport.scrollTop;
    }
    render();
  });
}

/** Adds the lines from..store.length-1 that match the search to `matches`. */
function matchFrom(from: number): void {
  if (!matcher) return;
  for (let i = from; i < store.length; i++) if (matcher.test(store.text(i))) matches.push(store.dropped + i);
}

let searchError = '';
function showCount(): void {
  const count = $('count');
  count.textContent = searchError || (matcher ? `${matches.length ? current + 1 : 0} of ${matches.length}` : '');
  count.classList.toggle('error', !!searchError);
}

function search(): void {
  const compiled = compile(options);
  matcher = compiled.matcher;
  searchError = compiled.error ?? '';
  matches = [];
  matchFrom(0);
  current = matches.length ? 0 : -1;
  showCount();
  if (filtering() || filter) relayout();
  reveal();
}

function reveal(): void {
  if (current >= 0) {
    follow = false;
    checkbox('follow').checked = false;
    const k = filtering() ? current : matches[current]! - store.dropped;
    const scale = scrollScale(totalRows() * ROW, viewport.clientHeight);
    viewport.scrollTop = (topRow(k) * ROW - viewport.clientHeight / 2) / scale;
  }
  schedule();
}

function save(): void {
  vscode.setState({ runId, wrap } satisfies State);
}

window.addEventListener('message', (e: MessageEvent<ToViewer>) => {
  const m = e.data;
  if (m.type === 'reset') {
    store.clear();
    digits = 0;
    gutter();
    search();
    relayout();
  } else if (m.type === 'lines') {
    const from = store.length;
    const dropped = store.push(m.lines);
    const widened = gutter();
    if (dropped) {
      // The ring moved: matches of dropped lines go, the rest keep their absolute numbers.
      const gone = matches.findIndex((a) => a >= store.dropped);
      const cut = gone < 0 ? matches.length : gone;
      matches.splice(0, cut);
      current = matches.length ? Math.max(0, current - cut) : -1;
      matchFrom(store.length - m.lines.length);
      if (wrap) relayout();
    } else {
      matchFrom(from);
      if (wrap && widened) relayout();
      else if (wrap) index.append(shownCount(), rowsOfShown);
    }
    if (matcher) {
      if (current < 0 && matches.length) current = 0;
      showCount();
    }
  } else if (m.type === 'status') {
    statusEl.textContent = m.status;
    statusEl.className = `status ${m.status}`;
    document.title = m.title;
  } else if (m.type === 'connection') {
    const reconnecting = m.state === 'reconnecting';
    connEl.textContent = reconnecting ? 'reconnecting…' : m.state === 'live' ? 'live' : '';
    connEl.className = `connection ${m.state}`;
    banner.hidden = !reconnecting;
    $('banner-detail').textContent = reconnecting && m.detail ? ` (${m.detail})` : '';
  } else if (m.type === 'build') {
    // The header takes rows from the viewport: the ResizeObserver lays the log out again.
    const b = readBuild(m);
    if (b) renderBuild($('build'), b, (path, line) => vscode.postMessage({ type: 'open', path, line }));
  }
  schedule();
});

viewport.addEventListener('scroll', () => {
  // Following stops when the reader scrolls up from where following put the view.
  const atBottom = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW;
  if (follow && !atBottom && viewport.scrollTop < followedTop - 1) {
    follow = false;
    checkbox('follow').checked = false;
  }
  render();
});
new ResizeObserver(() => {
  if (wrap) relayout();
  schedule();
}).observe(viewport);
$('follow').addEventListener('change', (e) => {
  follow = (e.target as HTMLInputElement).checked;
  schedule();
});
$('times').addEventListener('change', (e) => {
  showTimes = (e.target as HTMLInputElement).checked;
  relayout();
  schedule();
});
$('wrap').addEventListener('change', (e) => {
  // Keeps the first line in view where it was.
  const scale = scrollScale(totalRows() * ROW, viewport.clientHeight);
  const first = shownAtRow((viewport.scrollTop * scale) / ROW);
  wrap = (e.target as HTMLInputElement).checked;
  relayout();
  save();
  render();
  if (!follow) viewport.scrollTop = (topRow(first) * ROW) / scrollScale(totalRows() * ROW, viewport.clientHeight);
  schedule();
});
$('search').addEventListener('input', (e) => {
  options.query = (e.target as HTMLInputElement).value;
  search();
});
$('case').addEventListener('change', (e) => {
  options.caseSensitive = (e.target as HTMLInputElement).checked;
  search();
});
$('regex').addEventListener('change', (e) => {
  options.regex = (e.target as HTMLInputElement).checked;
  search();
});
$('filter').addEventListener('change', (e) => {
  filter = (e.target as HTMLInputElement).checked;
  relayout();
  reveal();
});
$('search').addEventListener('keydown', (e) => {
  if ((e as KeyboardEvent).key === 'Enter' && matches.length) {
    current = (current + ((e as KeyboardEvent).shiftKey ? matches.length - 1 : 1)) % matches.length;
    showCount();
    reveal();
  }
});
// Ctrl/Cmd+F searches the log (as the editor's find does); Escape leaves the search for the log.
window.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'f') {
    e.preventDefault();
    ($('search') as HTMLElement & { focus(): void }).focus();
  } else if (e.key === 'Escape' && document.activeElement === $('search')) {
    viewport.focus();
  }
});
$('copy').addEventListener('click', () => vscode.postMessage({ type: 'copy', text: store.all().join('\n') }));
// An Odoo server log's level filter: the host sends the lines at that level and above again.
document.getElementById('level')?.addEventListener('change', (e) => vscode.postMessage({ type: 'level', level: (e.target as HTMLElement & { value: string }).value }));
checkbox('wrap').checked = wrap;
gutter();
relayout();
// Remembered by VS Code across window reloads: the panel serializer reopens this run, wrapped or not.
save();
vscode.postMessage({ type: 'ready' });
