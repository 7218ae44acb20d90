// The run log viewer (webview): lines arrive from the extension host in order (it follows the run over
// Realtime with history and gap fill), are kept in one array and drawn virtually (only the rows in view
// exist in the DOM), so a million lines stay responsive. Text is always set as textContent: a line
// holding <script> or <img onerror> stays text. Controls are @vscode-elements; colours VS Code's.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { levelOf, parseAnsi } from './ansi.ts';
import { fileRefs } from './traceback.ts';

interface Line {
  seq: number;
  ts: string;
  stream: string;
  line: string;
}
type ToViewer = { type: 'lines'; lines: Line[] } | { type: 'status'; status: string; title: string } | { type: 'reset' } | { type: 'connection'; state: 'live' | 'reconnecting' | 'done' };

declare function acquireVsCodeApi(): { postMessage(m: unknown): void; setState(s: unknown): void; getState(): unknown };
const vscode = acquireVsCodeApi();

const ROW = 18;
// Bounded memory: the newest lines are kept; older ones can be read in the run's full log (CLI/API).
const MAX_LINES = 1_000_000;
const lines: Line[] = [];
let follow = true;
let showTimes = false;
let matches: number[] = [];
let current = -1;
let query = '';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const viewport = $('viewport');
const spacer = $('spacer');
const rows = $('rows');
const statusEl = $('status');
const connEl = $('connection');

function render(): void {
  spacer.style.height = `${lines.length * ROW}px`;
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 20);
  const last = Math.min(lines.length, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW) + 20);
  rows.style.transform = `translateY(${first * ROW}px)`;
  const frag = document.createDocumentFragment();
  for (let i = first; i < last; i++) frag.appendChild(row(lines[i]!, i));
  rows.replaceChildren(frag);
}

function row(l: Line, index: number): HTMLElement {
  const div = document.createElement('div');
  div.className = `line ${levelOf(l.line) ?? ''} ${l.stream === 'stderr' ? 'stderr' : ''} ${matches[current] === index ? 'current' : ''}`;
  if (showTimes) {
    const t = document.createElement('span');
    t.className = 'ts';
    t.textContent = `${l.ts.slice(11, 23)} `;
    div.appendChild(t);
  }
  const refs = fileRefs(l.line);
  for (const seg of parseAnsi(l.line)) {
    const span = document.createElement('span');
    span.textContent = seg.text;
    if (seg.fg !== undefined) span.className = `fg${seg.fg}`;
    if (seg.bold) span.style.fontWeight = 'bold';
    div.appendChild(span);
  }
  for (const ref of refs) {
    const a = document.createElement('a');
    a.textContent = ` ↗ ${ref.path.split('/').slice(-2).join('/')}:${ref.line}`;
    a.href = '#';
    a.addEventListener('click', (e) => {
      e.preventDefault();
      vscode.postMessage({ type: 'open', path: ref.path, line: ref.line });
    });
    div.appendChild(a);
  }
  if (query && l.line.toLowerCase().includes(query)) div.classList.add('match');
  return div;
}

let scheduled = false;
function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    render();
    if (follow) viewport.scrollTop = viewport.scrollHeight;
  });
}

function search(q: string): void {
  query = q.toLowerCase();
  matches = [];
  if (query) lines.forEach((l, i) => l.line.toLowerCase().includes(query) && matches.push(i));
  current = matches.length ? 0 : -1;
  $('count').textContent = query ? `${matches.length ? current + 1 : 0} of ${matches.length}` : '';
  reveal();
}

function reveal(): void {
  if (current >= 0) {
    follow = false;
    ($('follow') as HTMLInputElement & { checked: boolean }).checked = false;
    viewport.scrollTop = matches[current]! * ROW - viewport.clientHeight / 2;
  }
  schedule();
}

window.addEventListener('message', (e: MessageEvent<ToViewer>) => {
  const m = e.data;
  if (m.type === 'reset') {
    lines.length = 0;
    search('');
  } else if (m.type === 'lines') {
    for (const l of m.lines) lines.push(l);
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    if (query) search(query);
  } else if (m.type === 'status') {
    statusEl.textContent = m.status;
    statusEl.className = `status ${m.status}`;
    document.title = m.title;
  } else if (m.type === 'connection') {
    connEl.textContent = m.state === 'reconnecting' ? 'reconnecting…' : m.state === 'live' ? 'live' : '';
  }
  schedule();
});

viewport.addEventListener('scroll', () => {
  const atBottom = viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW;
  if (!atBottom && follow && !scheduled) {
    follow = false;
    ($('follow') as HTMLInputElement & { checked: boolean }).checked = false;
  }
  render();
});
$('follow').addEventListener('change', (e) => {
  follow = (e.target as HTMLInputElement).checked;
  schedule();
});
$('times').addEventListener('change', (e) => {
  showTimes = (e.target as HTMLInputElement).checked;
  schedule();
});
$('search').addEventListener('input', (e) => search((e.target as HTMLInputElement).value));
$('search').addEventListener('keydown', (e) => {
  if ((e as KeyboardEvent).key === 'Enter' && matches.length) {
    current = (current + ((e as KeyboardEvent).shiftKey ? matches.length - 1 : 1)) % matches.length;
    $('count').textContent = `${current + 1} of ${matches.length}`;
    reveal();
  }
});
$('copy').addEventListener('click', () => vscode.postMessage({ type: 'copy', text: lines.map((l) => l.line).join('\n') }));
// Remembered by VS Code across window reloads: the panel serializer reopens this run.
vscode.setState({ runId: (window as unknown as { __odooopsRun?: number }).__odooopsRun });
vscode.postMessage({ type: 'ready' });
