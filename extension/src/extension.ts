// OdooOps in VS Code: the environments tree, the status bar and the live feed that keeps them current;
// the commands are in commands.ts, run logs in logPanel.ts. It talks to the server with the CLI's own
// API client (contract-typed; errors carry the server's hint). Activated lazily (when the view is
// opened, a command runs or a log panel is restored). A server on this machine is found by itself;
// another one is set with "OdooOps: Connect…" (URL in settings, token in SecretStorage).
import * as vscode from 'vscode';
import { z } from 'zod';
import { ApiClient, CliError, EXIT } from '../../client/api-client.ts';
import { registerCommands } from './commands.ts';
import { resolveConnection, TOKEN_KEY } from './connection.ts';
import { LogPanels, VIEW_TYPE } from './logPanel.ts';
import { followProjects } from './projectFeed.ts';
import { Store } from './store.ts';
import { OdooOpsTree } from './tree.ts';

let api: ApiClient | undefined;

/** What activate returns: the extension-host tests read the tree through it, as VS Code does. */
export interface OdooOpsApi {
  store: Store;
  tree: OdooOpsTree;
  panels: LogPanels;
}

export async function activate(context: vscode.ExtensionContext): Promise<OdooOpsApi> {
  const need = (): ApiClient => {
    if (!api) throw new CliError('not connected', EXIT.unreachable, 'Run "OdooOps: Connect…".');
    return api;
  };
  const store = new Store({ get: async (p, s) => s.parse(await need().get(p, z.unknown())) });
  const tree = new OdooOpsTree(store);
  const view = vscode.window.createTreeView('odooops.environments', { treeDataProvider: tree, showCollapseAll: true });
  // Log panels restored after a window reload are deserialized during activation, before the first
  // connect has finished: they wait for it.
  let markConnected!: () => void;
  const connected = new Promise<void>((resolve) => (markConnected = resolve));
  const panels = new LogPanels(context, async () => (await connected, api));
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.command = 'odooops.environments.focus';
  context.subscriptions.push(view, status, vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, panels));

  // The project and environment in hand: the one selected in the tree (else the projects).
  let current: { project: string; env?: string } | undefined;
  /** Set while the live feed is down (its reason). */
  let feed: string | undefined;
  view.onDidChangeSelection(({ selection: [n] }) => {
    if (!n || n.type === 'message') return;
    current = n.type === 'project' ? { project: n.project.slug } : n.type === 'run' ? { project: n.run.project, env: n.run.environment }
      : { project: n.project, env: n.type === 'environment' || n.type === 'backups' ? n.env.name : n.type === 'backup' ? n.env : undefined };
    showStatus();
  });
  const showStatus = () => {
    const running = store.runningCount();
    const where = current ? `${current.project}${current.env ? ` › ${current.env}` : ''}` : store.projects.map((p) => p.slug).join(', ') || 'OdooOps';
    // While the live feed is down the tree may be behind: say so (it catches up on the rejoin).
    status.text = `$(${feed ? 'debug-disconnect' : 'server-environment'}) ${where}${running ? ` $(sync~spin) ${running}` : ''}${feed ? ' (reconnecting…)' : ''}`;
    status.tooltip = feed ? `OdooOps: the live connection is down (${feed}); the tree catches up when it is back` : running ? `${running} OdooOps run(s) queued or running` : 'OdooOps';
    status.show();
  };
  store.onDidChange(showStatus);
  let unsubscribe: (() => Promise<void>) | undefined;

  const connect = async () => {
    const url = vscode.workspace.getConfiguration('odooops').get<string>('serverUrl') || undefined;
    const conn = resolveConnection(url, await context.secrets.get(TOKEN_KEY));
    api = conn ? new ApiClient({ url: conn.url, token: conn.token }) : undefined;
    await vscode.commands.executeCommand('setContext', 'odooops.connected', !!api);
    await store.load();
    await vscode.commands.executeCommand('setContext', 'odooops.connected', !!api && !store.error);
    await vscode.commands.executeCommand('setContext', 'odooops.hasProjects', store.projects.length > 0);
    await unsubscribe?.();
    feed = undefined;
    showStatus();
    unsubscribe = api && !store.error ? await followProjects(api, store.projects, {
      run: (r) => store.applyRun(r),
      approval: (project, id, status) => void store.reloadApprovals(project).then(() => {
        const a = store.approval(project, id);
        // The requester hears of the decision; an approved request can be run from the notification.
        if (a && a.requestedBy === store.me && status !== 'pending') commands.onDecided(project, a);
      }, () => {}),
      rejoined: async (project) => void (await store.refreshProject(project)),
      state: (state, detail) => {
        feed = state === 'reconnecting' ? detail ?? 'reconnecting' : undefined;
        showStatus();
      },
    }) : undefined;
  };

  const commands = registerCommands({ context, store, panels, need, connect });

  context.subscriptions.push({ dispose: () => void unsubscribe?.() });
  await commands.run('connect', connect);
  markConnected();
  return { store, tree, panels };
}

export function deactivate(): void {}
