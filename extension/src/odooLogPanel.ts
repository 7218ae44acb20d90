// "OdooOps: Show Odoo log": an environment's running Odoo log beside the editor, in the run log viewer
// (webview/src: virtual rows, search, traceback links), with a level filter. The extension host follows
// the log with the CLI's follower (client/follow.ts followOdooLog: Realtime announcements on
// odoo-log:<environment id>, gap fill from the API, the lease that keeps the worker reading it renewed
// while the panel is open) and keeps the lines; the webview gets those at the chosen level and above,
// all again when the level changes. Closing the panel stops the follower: the server stops reading the
// log once nobody follows it.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type * as C from '../../contract/index.ts';
import { followOdooLog } from '../../client/follow.ts';
import type { ApiClient } from '../../client/api-client.ts';
import { viewerHtml } from '../../webview/src/page.ts';
import { safeExternalUrl, safeLogPath } from '../../webview/src/links.ts';
import { openTraceback } from './logPanel.ts';
import { logPanelColumn } from './logColumn.ts';
import { atLevel, DEFAULT_LEVEL, LevelMessage, odooLogTitle } from './odooLog.ts';

export const ODOO_LOG_VIEW = 'odooops.odooLog';
const BATCH = 5000;
const FLUSH_MS = 50;
/** Lines a panel keeps: the server keeps a recent window too; older lines are in the file on the server. */
const KEEP = 200_000;

interface Entry {
  panel: vscode.WebviewPanel;
  lines: C.OdooLogLine[];
  level: C.OdooLogLevel;
  /** Index in `lines` of the first line not yet considered for the webview. */
  posted: number;
  flush: ReturnType<typeof setTimeout> | undefined;
  disposed: boolean;
  stop: AbortController;
  /** When it was opened or last became the active editor (logColumn.ts). */
  lastActive: number;
}

export class OdooLogPanels {
  private readonly panels = new Map<string, Entry>();
  private activations = 0;
  private readonly context: vscode.ExtensionContext;
  private readonly api: () => Promise<ApiClient | undefined>;

  constructor(context: vscode.ExtensionContext, api: () => Promise<ApiClient | undefined>) {
    this.context = context;
    this.api = api;
  }

  /** Lines the panel of project/env holds (the extension-host test reads them). */
  lines(project: string, env: string): readonly C.OdooLogLine[] {
    return this.panels.get(`${project}/${env}`)?.lines ?? [];
  }

  open(project: string, env: string): void {
    const key = `${project}/${env}`;
    const existing = this.panels.get(key);
    if (existing) return existing.panel.reveal(existing.panel.viewColumn);
    // Beside the editor, then in the group the Odoo logs already are (tabs, not one more column each).
    const column = logPanelColumn([...this.panels.values()].map((p) => ({ viewColumn: p.panel.viewColumn, lastActive: p.lastActive })));
    const panel = vscode.window.createWebviewPanel(ODOO_LOG_VIEW, odooLogTitle(project, env), { viewColumn: column, preserveFocus: true }, {
      enableScripts: true, retainContextWhenHidden: false, localResourceRoots: [vscode.Uri.joinPath(this.context.extensionUri, 'dist')],
    });
    const entry: Entry = { panel, lines: [], level: DEFAULT_LEVEL, posted: 0, flush: undefined, disposed: false, stop: new AbortController(), lastActive: ++this.activations };
    this.panels.set(key, entry);
    panel.webview.html = viewerHtml({
      runId: 0, nonce: randomBytes(16).toString('base64'), cspSource: panel.webview.cspSource, levels: DEFAULT_LEVEL,
      script: panel.webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview.js')).toString(),
    });
    panel.onDidChangeViewState((e) => {
      if (e.webviewPanel.active) entry.lastActive = ++this.activations;
    });
    panel.onDidDispose(() => {
      entry.disposed = true;
      entry.stop.abort();
      clearTimeout(entry.flush);
      this.panels.delete(key);
    });
    const state = (s: 'live' | 'reconnecting' | 'done', detail?: string) => void panel.webview.postMessage({ type: 'connection', state: s, ...(detail ? { detail } : {}) });
    panel.webview.onDidReceiveMessage(async (m: { type?: string; path?: unknown; line?: unknown; text?: unknown; url?: unknown }) => {
      const level = LevelMessage.safeParse(m);
      if (m.type === 'ready' || level.success) {
        // A new webview, or another level: the lines at the level from the start.
        if (level.success) entry.level = level.data.level;
        void panel.webview.postMessage({ type: 'reset' });
        entry.posted = 0;
        post(entry);
        void panel.webview.postMessage({ type: 'status', status: 'Odoo log', title: panel.title });
      } else if (m.type === 'open') {
        const path = safeLogPath(m.path);
        if (path) await openTraceback(path, Number.isInteger(m.line) && (m.line as number) > 0 ? (m.line as number) : 1);
      } else if (m.type === 'openUrl') {
        const url = safeExternalUrl(m.url);
        if (url) await vscode.env.openExternal(vscode.Uri.parse(url, true));
      } else if (m.type === 'copy' && typeof m.text === 'string') {
        await vscode.env.clipboard.writeText(m.text);
      }
    });
    void this.follow(project, env, entry, state);
  }

  private async follow(project: string, env: string, entry: Entry, state: (s: 'live' | 'reconnecting' | 'done', detail?: string) => void): Promise<void> {
    const api = await this.api();
    if (!api) return state('reconnecting', 'not connected to an OdooOps server: run "OdooOps: Connect…"');
    try {
      state('live');
      await followOdooLog(api, project, env, (l) => {
        entry.lines.push(l);
        if (entry.lines.length >= KEEP + BATCH) {
          const dropped = entry.lines.length - KEEP;
          entry.lines.splice(0, dropped);
          entry.posted = Math.max(0, entry.posted - dropped);
        }
        if (entry.lines.length - entry.posted >= BATCH) post(entry);
        else entry.flush ??= setTimeout(() => post(entry), FLUSH_MS);
      }, {
        tail: 500, signal: entry.stop.signal, onState: (s, detail) => state(s, detail),
        onProblem: (problem) => void vscode.window.showWarningMessage(`OdooOps: ${problem}`),
      });
    } catch (err) {
      if (!entry.disposed) void vscode.window.showErrorMessage(`OdooOps: cannot follow the Odoo log of ${env}: ${(err as Error).message}`);
    }
  }
}

/** Posts the lines not posted yet that the level shows, in messages of at most BATCH lines. */
function post(entry: Entry): void {
  clearTimeout(entry.flush);
  entry.flush = undefined;
  if (entry.disposed) return;
  // Without their seq: filtered, they are not consecutive, and the viewer numbers lines from the first seq on.
  const shown = atLevel(entry.lines.slice(entry.posted), entry.level).map(({ ts, stream, line }) => ({ ts, stream, line }));
  for (let i = 0; i < shown.length; i += BATCH) void entry.panel.webview.postMessage({ type: 'lines', lines: shown.slice(i, i + BATCH) });
  entry.posted = entry.lines.length;
}
