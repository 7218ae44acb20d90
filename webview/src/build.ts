// A build's tests in the log viewer's header: "14 tests · 2 failed · 0 errors" (green when nothing
// failed, red otherwise), the modules tested, and the failures, each a link that asks the host to open
// the test's file at its line (the host checks the path again: links.ts, logPanel.ts). Outside the
// virtual scroll area: the log below keeps its rows and figures. Text is always textContent, so a test
// name or message holding markup stays text; the list is capped in height and scrolls by itself.
import { safeLogPath } from './links.ts';

export interface BuildFailure {
  outcome: 'failed' | 'error';
  test: string;
  file: string | null;
  line: number | null;
  message: string;
  inWorkspace: boolean;
}
export interface BuildHeader {
  status: string;
  revision: string;
  odooVersion: string | null;
  seconds: number;
  modules: string[];
  tests: number;
  failed: number;
  errors: number;
  failures: BuildFailure[];
}

const str = (v: unknown, max = 4000): v is string => typeof v === 'string' && v.length <= max;
const count = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** The host's 'build' message, checked (a webview's messages are input too); null when malformed. */
export function readBuild(m: unknown): BuildHeader | null {
  const b = m as Partial<BuildHeader> | null;
  if (!b || typeof b !== 'object' || !str(b.status, 40) || !str(b.revision, 200) || !(b.odooVersion === null || str(b.odooVersion, 40))) return null;
  if (typeof b.seconds !== 'number' || !Number.isFinite(b.seconds) || !count(b.tests) || !count(b.failed) || !count(b.errors)) return null;
  if (!Array.isArray(b.modules) || b.modules.length > 1000 || !b.modules.every((x) => str(x, 200))) return null;
  if (!Array.isArray(b.failures) || b.failures.length > 100) return null;
  for (const f of b.failures as Partial<BuildFailure>[]) {
    if (!f || (f.outcome !== 'failed' && f.outcome !== 'error') || !str(f.test, 1000) || !str(f.message)) return null;
    if (!(f.file === null || str(f.file, 1000)) || !(f.line === null || (count(f.line) && f.line > 0)) || typeof f.inWorkspace !== 'boolean') return null;
  }
  return b as BuildHeader;
}

/** "14 tests · 2 failed · 0 errors". */
export function countsText(b: Pick<BuildHeader, 'tests' | 'failed' | 'errors'>): string {
  return `${b.tests} test${b.tests === 1 ? '' : 's'} · ${b.failed} failed · ${b.errors} error${b.errors === 1 ? '' : 's'}`;
}

/** A failure's file the host may be asked to open: a plain relative path (links.ts's rule), else null. */
function openable(f: BuildFailure): string | null {
  const path = safeLogPath(f.file);
  return path && !path.startsWith('/') ? path : null;
}

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string) => {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

/** Draws the header into `root`; `open` is called with a failure's file and line when it is clicked. */
export function renderBuild(root: HTMLElement, b: BuildHeader, open: (path: string, line: number) => void): void {
  const bad = b.failed + b.errors > 0;
  const summary = el('div', 'summary');
  summary.appendChild(el('span', `counts ${bad ? 'failed' : 'passed'}`, countsText(b)));
  const meta = [b.modules.length ? `modules: ${b.modules.join(', ')}` : 'no modules', `${b.seconds.toFixed(1)} s`, b.revision.slice(0, 12), ...(b.odooVersion ? [`Odoo ${b.odooVersion}`] : [])];
  summary.appendChild(el('span', 'meta', meta.join(' · ')));
  const parts: HTMLElement[] = [summary];
  if (b.failures.length) {
    const list = el('ul', 'failures');
    for (const f of b.failures) {
      const li = el('li', `failure ${f.outcome}`);
      const name = f.test.split(' (')[0]!.trim() || f.test;
      const path = openable(f);
      const where = path ? `${path}${f.line ? `:${f.line}` : ''}` : '';
      if (path) {
        const a = el('a', 'test', name);
        // Never the path as an address: a click posts it, and the host opens it only in the workspace.
        a.href = '#';
        a.title = `${f.test}\n${where}`;
        a.addEventListener('click', (e) => {
          e.preventDefault();
          open(path, f.line ?? 1);
        });
        li.appendChild(a);
      } else {
        li.appendChild(el('span', 'test', name)).title = f.test;
      }
      li.appendChild(el('span', 'message', ` ${f.outcome === 'error' ? 'errored' : 'failed'}: ${f.message.split('\n')[0]}`));
      if (!f.inWorkspace) li.appendChild(el('span', 'where', path ? ` (${where}: not in this workspace)` : ' (no file of the repository)'));
      list.appendChild(li);
    }
    const more = b.failed + b.errors - b.failures.length;
    if (more > 0) list.appendChild(el('li', 'more', `… and ${more} more in the log`));
    parts.push(list);
  }
  root.replaceChildren(...parts);
  root.className = bad ? 'failed' : 'passed';
  root.hidden = false;
}
