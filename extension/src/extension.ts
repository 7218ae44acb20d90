// OdooOps in VS Code: the environments tree, the commands, run logs beside the code. It talks to the
// server with the CLI's own API client (contract-typed; errors carry the server's hint). Activated lazily
// (when the view is opened or a command runs). A server on this machine is found by itself; another one
// is set with "OdooOps: Connect…" (URL in settings, token in SecretStorage).
import * as vscode from 'vscode';
import { z } from 'zod';
import * as C from '../../contract/index.ts';
import { ApiClient, CliError, EXIT } from '../../server/cli/api-client.ts';
import { resolveConnection } from './connection.ts';
import { LogPanels, VIEW_TYPE } from './logPanel.ts';
import { Store } from './store.ts';
import { OdooOpsTree, type Node } from './tree.ts';

const TOKEN_KEY = 'odooops.token';
let api: ApiClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const need = (): ApiClient => {
    if (!api) throw new CliError('not connected', EXIT.unreachable, 'Run "OdooOps: Connect…".');
    return api;
  };
  const store = new Store({ get: async (p, s) => s.parse(await need().get(p, z.unknown())) });
  const tree = new OdooOpsTree(store);
  const view = vscode.window.createTreeView('odooops.environments', { treeDataProvider: tree, showCollapseAll: true });
  const panels = new LogPanels(context, () => api);
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.command = 'odooops.environments.focus';
  context.subscriptions.push(view, status, vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, panels));

  const showStatus = () => {
    const running = store.runningCount();
    status.text = `$(server-environment) ${store.projects.map((p) => p.slug).join(', ') || 'OdooOps'}${running ? ` $(sync~spin) ${running}` : ''}`;
    status.tooltip = running ? `${running} OdooOps run(s) queued or running` : 'OdooOps';
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
    unsubscribe = api && !store.error ? await followProjects(api, store) : undefined;
  };

  const run = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      const hint = err instanceof CliError && err.hint ? ` ${err.hint}` : '';
      void vscode.window.showErrorMessage(`OdooOps: ${what} failed: ${(err as Error).message}.${hint}`);
      return undefined;
    }
  };
  const pickEnvironment = async (node: Node | undefined, stages: string[]): Promise<{ project: string; env: C.Environment } | undefined> => {
    if (node?.type === 'environment') return { project: node.project, env: node.env };
    const items = store.projects.flatMap((p) => store.environments(p.slug).filter((e) => stages.includes(e.stage))
      .map((env) => ({ label: env.name, description: `${p.slug} · ${env.stage}`, project: p.slug, env })));
    return vscode.window.showQuickPick(items, { placeHolder: 'Environment' });
  };
  /** Queues a run, follows it with a cancellable progress notification, opens its log beside the editor. */
  const queue = async (project: string, env: string, kind: string, params: object = {}) => {
    const { data: r } = await need().request('POST', `/api/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(env)}/runs`, C.Run, { kind, params });
    store.applyRun(r);
    panels.open(r.id);
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `OdooOps: ${kind} on ${env}`, cancellable: true }, async (progress, token) => {
      token.onCancellationRequested(() => void need().request('POST', `/api/runs/${r.id}/cancel`, C.Run).catch(() => {}));
      for (;;) {
        const now = await need().get(`/api/runs/${r.id}`, C.Run);
        store.applyRun(now);
        progress.report({ message: now.status });
        if ((C.TERMINAL_STATUSES as readonly string[]).includes(now.status)) {
          if (now.status === 'failed') void vscode.window.showErrorMessage(`OdooOps: ${kind} on ${env} failed: ${now.error ?? ''}`, 'Open run logs').then((a) => a && panels.open(r.id));
          return;
        }
        await new Promise((res) => setTimeout(res, 1000));
      }
    });
    return r;
  };

  const register = (id: string, fn: (node?: Node) => Promise<unknown>) => context.subscriptions.push(vscode.commands.registerCommand(id, (node?: Node) => fn(node)));
  register('odooops.refresh', () => run('refresh', connect));
  register('odooops.connect', () => run('connect', async () => {
    const url = await vscode.window.showInputBox({ prompt: 'OdooOps server URL (empty: the server on this machine)', value: vscode.workspace.getConfiguration('odooops').get('serverUrl') ?? '' });
    if (url === undefined) return;
    if (url) {
      if (!URL.canParse(url)) throw new CliError(`${url} is not a URL`, EXIT.usage);
      const token = await vscode.window.showInputBox({ prompt: 'Token (odooops token --user <your id> prints one)', password: true, ignoreFocusOut: true });
      if (!token) return;
      await context.secrets.store(TOKEN_KEY, token);
    } else await context.secrets.delete(TOKEN_KEY);
    await vscode.workspace.getConfiguration('odooops').update('serverUrl', url || undefined, vscode.ConfigurationTarget.Global);
    await connect();
    if (store.error) throw new Error(store.error);
  }));
  register('odooops.cloneProdToStaging', (node) => run('clone', async () => {
    const target = await pickEnvironment(node, ['staging', 'development']);
    if (target) await queue(target.project, target.env.name, 'clone');
  }));
  register('odooops.backupNow', (node) => run('backup', async () => {
    const target = await pickEnvironment(node, ['production', 'staging', 'development']);
    if (target) await queue(target.project, target.env.name, 'backup', { kind: 'manual' });
  }));
  register('odooops.restoreBackup', (node) => run('restore', async () => {
    const target = await pickEnvironment(node, ['production', 'staging', 'development']);
    if (!target) return;
    const backups = await need().get(`/api/projects/${encodeURIComponent(target.project)}/environments/${encodeURIComponent(target.env.name)}/backups`, C.Backup.array());
    const pick = await vscode.window.showQuickPick(backups.map((b) => ({ label: `${b.kind} ${b.createdAt.slice(0, 16).replace('T', ' ')}`, description: `${(b.sizeBytes / 2 ** 20).toFixed(1)} MiB · Odoo ${b.odooVersion ?? '?'}`, b })), { placeHolder: 'Backup to restore' });
    if (!pick) return;
    if (target.env.stage === 'production') {
      // Production restores need a second admin's approval (the control plane's rule).
      const body: C.RequestApproval = { kind: 'restore', params: { backup: pick.b.id }, reason: 'restore requested from VS Code' };
      await need().request('POST', `/api/projects/${encodeURIComponent(target.project)}/environments/${encodeURIComponent(target.env.name)}/approvals`, z.unknown(), body);
      void vscode.window.showInformationMessage('OdooOps: restoring production needs another admin\'s approval; it was requested.');
      return;
    }
    await queue(target.project, target.env.name, 'restore', { backup: pick.b.id });
  }));
  register('odooops.cancelRun', (node) => run('cancel', async () => {
    if (node?.type !== 'run') return;
    store.applyRun((await need().request('POST', `/api/runs/${node.run.id}/cancel`, C.Run)).data);
  }));
  register('odooops.rerun', (node) => run('re-run', async () => {
    if (node?.type !== 'run') return;
    await queue(node.run.project, node.run.environment, node.run.kind, node.run.params);
  }));
  register('odooops.openRunLogs', async (node) => {
    if (node?.type === 'run') panels.open(node.run.id);
  });
  register('odooops.openEnvironment', async (node) => {
    if (node?.type === 'environment' && node.env.url) await vscode.env.openExternal(vscode.Uri.parse(node.env.url));
  });

  context.subscriptions.push({ dispose: () => void unsubscribe?.() });
  await run('connect', connect);
}

/** Run changes of every project arrive over Realtime (project:<uuid>, event run): one fetch, one node. */
async function followProjects(a: ApiClient, store: Store): Promise<() => Promise<void>> {
  const { realtime } = await a.get('/api/health', C.Health);
  const { createClient } = await import('@supabase/supabase-js');
  const sb = createClient(realtime.url ?? a.target.url, realtime.apiKey, { auth: { persistSession: false, autoRefreshToken: false } });
  sb.realtime.setAuth(a.target.token);
  const channels = store.projects.map((p) => sb.channel(`project:${p.id}`, { config: { private: true } })
    .on('broadcast', { event: 'run' }, ({ payload }) => {
      const id = Number((payload as { id?: number }).id);
      if (id > 0) void a.get(`/api/runs/${id}`, C.Run).then((r) => store.applyRun(r), () => {});
    })
    .subscribe());
  return async () => {
    for (const c of channels) await sb.removeChannel(c);
  };
}

export function deactivate(): void {}
