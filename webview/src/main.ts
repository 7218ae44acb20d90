// The run log viewer (webview): lines arrive from the extension host in order (it follows the run over
// Realtime with history and gap fill), are kept in a compact ring (lines.ts) and drawn virtually (only
// the rows in view exist in the DOM), so a million lines stay responsive. With wrap on, a line's height is
// computed from its width in columns (monospace) and prefix sums place it (layout.ts). Text is always set
// as textContent: a line holding <script> or <img onerror> stays text. Controls are @vscode-elements;
// colours VS Code's. While the host's live connection is down a banner says so.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { levelOf, parseAnsi } from './ansi.ts';
import { linkText, rowsFor, RowIndex, scrollHeight, scrollScale } from './layout.ts';
import { LineStore, type IncomingLine } from './lines.ts';
import { fileRefs } from './traceback.ts';

type ToViewer =
  | { type: 'lines'; lines: IncomingLine[] }
  | { type: 'status'; status: string; title: string }
  | { type: 'reset' }
  | { type: 'connection'; state: 'live' | 'reconnecting' | 'done'; detail?: string };
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
// Absolute line numbers (store.dropped + index) of the lines matching `query`, ascending.
let matches: number[] = [];
let current = -1;
let query = '';
// With wrap on: rows per line and their prefix sums; columns that fit in one row.
const index = new RowIndex();
let perRow = 0;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const viewport = $('viewport');
const spacer = $('spacer');
const rows = $('rows');
const statusEl = $('status');
const connEl = $('connection');
const banner = $('banner');
const checkbox = (id: string) => $<HTMLElement & { checked: boolean }>(id);

// Geometry in rows: with wrap off every line is one row and the index is not kept.
const rowsOf = (i: number) => rowsFor(store.columns(i) + (showTimes ? TIME_COLUMNS : 0), perRow);
const topRow = (i: number) => (wrap ? index.top(i) : i);
const totalRows = () => (wrap ? index.total : store.length);
const lineAtRow = (r: number) => (wrap ? index.lineAt(r) : Math.max(0, Math.min(store.length - 1, Math.floor(r))));

/** Columns of the monospace font that fit in a row (the rows' width less their padding). */
function measure(): void {
  const probe = document.createElement('div');
  probe.className = 'line';
  probe.style.position = 'absolute';
  probe.style.visibility = 'hidden';
  probe.style.whiteSpace = 'pre';
  probe.textContent = 'M'.repeat(200);
  rows.appendChild(probe);
  const probed = probe.getBoundingClientRect().width;
  probe.remove();
  // A hidden panel has no layout yet: 8 px is a plausible width until the ResizeObserver says more.
  const charWidth = probed > 16 ? (probed - 16) / 200 : 8;
  perRow = Math.max(10, Math.floor((viewport.clientWidth - 16) / charWidth));
}

function relayout(): void {
  document.body.classList.toggle('wrap', wrap);
  if (!wrap) return;
  measure();
  index.build(store.length, rowsOf);
}

function render(): void {
  const virtual = totalRows() * ROW;
  spacer.style.height = `${scrollHeight(virtual)}px`;
  const scale = scrollScale(virtual, viewport.clientHeight);
  const top = viewport.scrollTop * scale;
  const first = Math.max(0, lineAtRow(top / ROW) - OVERSCAN);
  const last = Math.min(store.length, lineAtRow((top + viewport.clientHeight) / ROW) + 1 + OVERSCAN);
  // Placed relative to the scroll position, so the same code serves a scaled scroll area.
  rows.style.transform = `translateY(${viewport.scrollTop + topRow(first) * ROW - top}px)`;
  const frag = document.createDocumentFragment();
  for (let i = first; i < last; i++) frag.appendChild(row(i));
  rows.replaceChildren(frag);
}

function row(i: number): HTMLElement {
  const text = store.text(i);
  const div = document.createElement('div');
  const abs = store.dropped + i;
  div.className = `line ${levelOf(text) ?? ''} ${store.isStderr(i) ? 'stderr' : ''} ${matches[current] === abs ? 'current' : ''}`;
  // The computed height, at least: a line that wraps more than computed (wide characters) pushes the
  // next ones down rather than covering them.
  if (wrap) div.style.minHeight = `${rowsOf(i) * ROW}px`;
  if (showTimes) {
    const t = document.createElement('span');
    t.className = 'ts';
    t.textContent = `${store.time(i)} `;
    div.appendChild(t);
  }
  for (const seg of parseAnsi(text)) {
    const span = document.createElement('span');
    span.textContent = seg.text;
    if (seg.fg !== undefined) span.className = `fg${seg.fg}`;
    if (seg.bold) span.style.fontWeight = 'bold';
    div.appendChild(span);
  }
  if (text.includes('File "')) {
    for (const ref of fileRefs(text)) {
      const a = document.createElement('a');
      a.textContent = linkText(ref.path, ref.line);
      a.href = '#';
      a.addEventListener('click', (e) => {
        e.preventDefault();
        vscode.postMessage({ type: 'open', path: ref.path, line: ref.line });
      });
      div.appendChild(a);
    }
  }
  if (query && text.toLowerCase().includes(query)) div.classList.add('match');
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

/** Adds the lines from..store.length-1 that match the query to `matches`. */
function matchFrom(from: number): void {
  if (!query) return;
  for (let i = from; i < store.length; i++) if (store.text(i).toLowerCase().includes(query)) matches.push(store.dropped + i);
}

function showCount(): void {
  $('count').textContent = query ? `${matches.length ? current + 1 : 0} of ${matches.length}` : '';
}

function search(q: string): void {
  query = q.toLowerCase();
  matches = [];
  matchFrom(0);
  current = matches.length ? 0 : -1;
  showCount();
  reveal();
}

function reveal(): void {
  if (current >= 0) {
    follow = false;
    checkbox('follow').checked = false;
    const i = matches[current]! - store.dropped;
    const scale = scrollScale(totalRows() * ROW, viewport.clientHeight);
    viewport.scrollTop = (topRow(i) * ROW - viewport.clientHeight / 2) / scale;
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
    if (wrap) index.build(0, rowsOf);
    search(query);
  } else if (m.type === 'lines') {
    const from = store.length;
    const dropped = store.push(m.lines);
    if (dropped) {
      // The ring moved: matches of dropped lines go, the rest keep their absolute numbers.
      const gone = matches.findIndex((a) => a >= store.dropped);
      const cut = gone < 0 ? matches.length : gone;
      matches.splice(0, cut);
      current = matches.length ? Math.max(0, current - cut) : -1;
      if (wrap) index.build(store.length, rowsOf);
      matchFrom(store.length - m.lines.length);
    } else {
      if (wrap) index.append(store.length, rowsOf);
      matchFrom(from);
    }
    if (query) {
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
  const first = lineAtRow((viewport.scrollTop * scale) / ROW);
  wrap = (e.target as HTMLInputElement).checked;
  relayout();
  save();
  render();
  if (!follow) viewport.scrollTop = (topRow(first) * ROW) / scrollScale(totalRows() * ROW, viewport.clientHeight);
  schedule();
});
$('search').addEventListener('input', (e) => search((e.target as HTMLInputElement).value));
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
checkbox('wrap').checked = wrap;
relayout();
// Remembered by VS Code across window reloads: the panel serializer reopens this run, wrapped or not.
save();
vscode.postMessage({ type: 'ready' });
