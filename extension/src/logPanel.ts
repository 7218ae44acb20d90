// Run logs beside the editor: a webview panel per run. The extension host follows the run (Realtime
// batches plus history and gap fill by sequence number: the CLI's follower) and keeps every line, so a
// panel hidden and shown again, or restored after a window reload (WebviewPanelSerializer), is filled
// again from the start. The webview gets text and renders it as text, under a strict CSP with a nonce.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import * as C from '../../contract/index.ts';
import { followLogs } from '../../server/cli/follow.ts';
import type { ApiClient } from '../../server/cli/api-client.ts';
import { workspaceCandidates } from '../../webview/src/traceback.ts';

export const VIEW_TYPE = 'odooops.runLogs';

interface Panel {
  panel: vscode.WebviewPanel;
  lines: C.LogLine[];
  status: string;
}

export class LogPanels implements vscode.WebviewPanelSerializer {
  private readonly panels = new Map<number, Panel>();
  private readonly context: vscode.ExtensionContext;
  private readonly api: () => ApiClient | undefined;

  constructor(context: vscode.ExtensionContext, api: () => ApiClient | undefined) {
    this.context = context;
    this.api = api;
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const runId = Number((state as { runId?: number } | undefined)?.runId);
    if (!Number.isInteger(runId) || runId <= 0) return panel.dispose();
    this.attach(runId, panel);
  }

  open(runId: number): void {
    const existing = this.panels.get(runId);
    if (existing) return existing.panel.reveal(vscode.ViewColumn.Beside);
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, `Run #${runId}`, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.context.extensionUri, 'dist')],
    });
    this.attach(runId, panel);
  }

  private attach(runId: number, panel: vscode.WebviewPanel): void {
    const entry: Panel = { panel, lines: [], status: 'queued' };
    this.panels.set(runId, entry);
    panel.webview.html = this.html(panel.webview, runId);
    panel.onDidDispose(() => this.panels.delete(runId));
    panel.webview.onDidReceiveMessage(async (m: { type: string; path?: string; line?: number; text?: string }) => {
      if (m.type === 'ready') {
        // A new or re-shown webview: everything so far, then live lines as they come.
        void panel.webview.postMessage({ type: 'reset' });
        for (let i = 0; i < entry.lines.length; i += 5000) void panel.webview.postMessage({ type: 'lines', lines: entry.lines.slice(i, i + 5000) });
        void panel.webview.postMessage({ type: 'status', status: entry.status, title: panel.title });
      } else if (m.type === 'open' && m.path) {
        await openTraceback(m.path, m.line ?? 1);
      } else if (m.type === 'copy' && m.text !== undefined) {
        await vscode.env.clipboard.writeText(m.text);
        void vscode.window.setStatusBarMessage('OdooOps: log copied', 2000);
      }
    });
    void this.follow(runId, entry);
  }

  private async follow(runId: number, entry: Panel): Promise<void> {
    const api = this.api();
    if (!api) return;
    try {
      const run = await api.get(`/api/runs/${runId}`, C.Run);
      entry.panel.title = `${run.kind} #${run.id} · ${run.environment}`;
      entry.status = run.status;
      void entry.panel.webview.postMessage({ type: 'status', status: run.status, title: entry.panel.title });
      void entry.panel.webview.postMessage({ type: 'connection', state: 'live' });
      const final = await followLogs(api, runId, 0, (l) => {
        if (entry.status === 'queued') {
          // Lines mean it runs (the final state comes when the follower ends).
          entry.status = 'running';
          void entry.panel.webview.postMessage({ type: 'status', status: 'running', title: entry.panel.title });
        }
        entry.lines.push(l);
        void entry.panel.webview.postMessage({ type: 'lines', lines: [l] });
      });
      entry.status = final;
      void entry.panel.webview.postMessage({ type: 'status', status: final, title: entry.panel.title });
      void entry.panel.webview.postMessage({ type: 'connection', state: 'done' });
    } catch (err) {
      void vscode.window.showErrorMessage(`OdooOps: cannot follow run ${runId}: ${(err as Error).message}`);
    }
  }

  private html(webview: vscode.Webview, runId: number): string {
    const nonce = randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview.js'));
    return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}'; font-src ${webview.cspSource};">
<meta name="viewport" content="width=device-width, initial-scale=1.0"><title>Run #${runId}</title>
<style nonce="${nonce}">
body { padding: 0; margin: 0; color: var(--vscode-editor-foreground); background: var(--vscode-editor-background); font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
#bar { display: flex; gap: 8px; align-items: center; padding: 4px 8px; border-bottom: 1px solid var(--vscode-panel-border); position: sticky; top: 0; background: var(--vscode-editor-background); }
#viewport { position: absolute; top: 40px; bottom: 0; left: 0; right: 0; overflow: auto; }
#rows { position: absolute; top: 0; left: 0; right: 0; }
.line { height: 18px; line-height: 18px; white-space: pre; padding: 0 8px; }
.line.error { color: var(--vscode-errorForeground); } .line.warning { color: var(--vscode-editorWarning-foreground); }
.line.match { background: var(--vscode-editor-findMatchHighlightBackground); } .line.current { background: var(--vscode-editor-findMatchBackground); }
.ts { color: var(--vscode-descriptionForeground); } a { color: var(--vscode-textLink-foreground); }
.status.failed { color: var(--vscode-errorForeground); } .status.succeeded { color: var(--vscode-testing-iconPassed); }
.fg0{color:var(--vscode-terminal-ansiBlack)}.fg1{color:var(--vscode-terminal-ansiRed)}.fg2{color:var(--vscode-terminal-ansiGreen)}.fg3{color:var(--vscode-terminal-ansiYellow)}
.fg4{color:var(--vscode-terminal-ansiBlue)}.fg5{color:var(--vscode-terminal-ansiMagenta)}.fg6{color:var(--vscode-terminal-ansiCyan)}.fg7{color:var(--vscode-terminal-ansiWhite)}
.fg8{color:var(--vscode-terminal-ansiBrightBlack)}.fg9{color:var(--vscode-terminal-ansiBrightRed)}.fg10{color:var(--vscode-terminal-ansiBrightGreen)}.fg11{color:var(--vscode-terminal-ansiBrightYellow)}
.fg12{color:var(--vscode-terminal-ansiBrightBlue)}.fg13{color:var(--vscode-terminal-ansiBrightMagenta)}.fg14{color:var(--vscode-terminal-ansiBrightCyan)}.fg15{color:var(--vscode-terminal-ansiBrightWhite)}
</style></head><body>
<div id="bar"><span id="status" class="status"></span><span id="connection"></span>
<vscode-textfield id="search" placeholder="Search"></vscode-textfield><span id="count"></span>
<vscode-checkbox id="follow" checked>Follow</vscode-checkbox><vscode-checkbox id="times">Timestamps</vscode-checkbox>
<vscode-button id="copy" secondary>Copy</vscode-button></div>
<div id="viewport" data-run="${runId}"><div id="spacer"></div><div id="rows"></div></div>
<script nonce="${nonce}">window.__odooopsRun = ${runId};</script>
<script nonce="${nonce}" src="${script}"></script>
</body></html>`;
  }
}

/** Opens the workspace file a traceback names, at its line, when the workspace has it. */
async function openTraceback(path: string, line: number): Promise<void> {
  for (const candidate of workspaceCandidates(path)) {
    const found = await vscode.workspace.findFiles(`**/${candidate}`, '**/node_modules/**', 2);
    if (found.length === 1) {
      const doc = await vscode.window.showTextDocument(found[0]!, { viewColumn: vscode.ViewColumn.One });
      const pos = new vscode.Position(Math.max(0, line - 1), 0);
      doc.selection = new vscode.Selection(pos, pos);
      doc.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
      return;
    }
  }
  void vscode.window.showInformationMessage(`OdooOps: ${path} is not in this workspace`);
}
