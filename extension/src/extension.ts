// OdooOps in VS Code: the environments tree, the status bar and the live feed that keeps them current;
// the commands are in commands.ts, run logs in logPanel.ts. It talks to the server with the CLI's own
// API client (contract-typed; errors carry the server's hint). Activated lazily (when the view is
// opened, a command runs or a log panel is restored). A server on this machine is found by itself and
// needs no sign-in; another one is set with "OdooOps: Connect…" (its URL in user settings) and signed in
// to as it offers (signIn.ts: VS Code's GitHub account, or Supabase Auth), else with a token kept in
// SecretStorage. The local server's connection file is watched: a server started (or stopped) after
// VS Code is noticed without a Refresh.
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import { z } from 'zod';
import * as C from '../../contract/index.ts';
import { ApiClient, CliError, EXIT } from '../../client/api-client.ts';
import { registerCommands } from './commands.ts';
import { findLocalConnection, noLocalServer, odooopsHomeOf, TOKEN_KEY, unreachableLocalServer } from './connection.ts';
import { clientFiles } from '../../contract/home.ts';
import { LogPanels, VIEW_TYPE } from './logPanel.ts';
import type { OdooLogPanels } from './odooLogPanel.ts';
import { followProjects } from './projectFeed.ts';
import { MailBox } from './mailBox.ts';
import { registerMailViews } from './mailPanel.ts';
import { showAlert } from './alerts.ts';
import { Store } from './store.ts';
import { OdooOpsTree } from './tree.ts';
import { methodOf, SignIns } from './signIn.ts';
import { TestProblems } from './testProblems.ts';

let api: ApiClient | undefined;

/** What activate returns: the extension-host tests read the tree through it, as VS Code does. */
export interface OdooOpsApi {
  store: Store;
  tree: OdooOpsTree;
  panels: LogPanels;
  signIns: SignIns;
  /** The API client in use (undefined: not connected or not signed in). */
  client(): ApiClient | undefined;
  /** Each change of the live project feed's state since activation ("reconnecting: why", "live"). */
  feedStates: string[];
  /** The context keys the welcome views and menus read, without their "odooops." prefix. */
  contextKeys: Record<string, boolean>;
  /** Each error notification shown since activation (what a person read). */
  errors: string[];
  /** The "Show Odoo log" panels (odooLogPanel.ts). */
  odooLogs: OdooLogPanels;
  /** Failed tests of each environment's latest build, as problems (the Problems view). */
  testProblems: TestProblems;
}

export async function activate(context: vscode.ExtensionContext): Promise<OdooOpsApi> {
  /** Why there is no client (where the local server was looked for), for the next command that needs one. */
  let notConnected: { message: string; hint: string } | undefined;
  const need = (): ApiClient => {
    if (!api) throw new CliError(notConnected?.message ?? 'not connected', EXIT.unreachable, notConnected?.hint ?? 'Run "OdooOps: Connect…".');
    return api;
  };
  const config = () => vscode.workspace.getConfiguration('odooops');
  const homeNow = () => odooopsHomeOf(config().get<string>('home'));
  const store = new Store({ get: async (p, s) => s.parse(await need().get(p, z.unknown())) });
  const mailBox = new MailBox(() => ({ get: async (p, s) => s.parse(await need().get(p, z.unknown())) }));
  const tree = new OdooOpsTree(store, mailBox);
  const view = vscode.window.createTreeView('odooops.environments', { treeDataProvider: tree, showCollapseAll: true });
  // Log panels restored after a window reload are deserialized during activation, before the first
  // connect has finished: they wait for it.
  let markConnected!: () => void;
  const connected = new Promise<void>((resolve) => (markConnected = resolve));
  const panels = new LogPanels(context, async () => (await connected, api));
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.command = 'odooops.environments.focus';
  context.subscriptions.push(view, status, vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, panels), ...tree.attach(view));
  // Your roles decide what the palette offers ("odooops.canRun"…, package.json's `when` clauses).
  const forget = store.onDidChangeAbilities((a) => {
    for (const [key, value] of Object.entries(a)) void vscode.commands.executeCommand('setContext', `odooops.${key}`, value);
  });
  context.subscriptions.push({ dispose: forget });
  // Builds' failed tests in the Problems view, kept to what the store knows (cleared with it).
  const testProblems = new TestProblems(store);
  context.subscriptions.push(testProblems);

  // The project and environment in hand: the one selected in the tree (else the projects).
  let current: { project: string; env?: string } | undefined;
  /** Set while the live feed is down (its reason). */
  let feed: string | undefined;
  /** Which server, for the status bar's tooltip. */
  let who: string | undefined;
  const feedStates: string[] = [];
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
    const me = store.meName ? `signed in as ${store.meName}` : '';
    const server = who ? `OdooOps: ${who}${me ? `, ${me}` : ''}` : 'OdooOps';
    status.tooltip = feed ? `${server}\nThe live connection is down (${feed}); the tree catches up when it is back` : running ? `${server}\n${running} run(s) queued or running` : server;
    status.show();
  };
  store.onDidChange(showStatus);
  /** The context keys the welcome views and menus read ("odooops.<key>"), as last set. */
  const contextKeys: Record<string, boolean> = {};
  const when = async (key: string, value: boolean) => {
    contextKeys[key] = value;
    await vscode.commands.executeCommand('setContext', `odooops.${key}`, value);
  };
  let unsubscribe: (() => Promise<void>) | undefined;

  // One connect at a time (a sign-in that lands while the tree loads waits for it, then connects again).
  // A quiet one (activation, the connection file changing) does not call "no server on this machine"
  // an error: the welcome view says so, and the next command that needs a server says where it looked.
  let connecting: Promise<void> = Promise.resolve();
  const connect = (quiet = false) => (connecting = connecting.catch(() => {}).then(() => connectNow(quiet)));
  /** The server URL the last connect used ('' : this machine's), and the local connection it found. */
  let connectedTo: string | undefined;
  let localUsed: { url: string; token: string } | undefined;
  const connectNow = async (quiet: boolean) => {
    const url = config().get<string>('serverUrl') || undefined;
    connectedTo = url ?? '';
    localUsed = undefined;
    notConnected = undefined;
    await unsubscribe?.();
    unsubscribe = undefined;
    api = undefined;
    let offerSignIn = false;
    let failed: Error | undefined;
    let local: { file: string; url: string } | undefined;
    if (!url) {
      signIns.close();
      const { home, from } = homeNow();
      const found = findLocalConnection(home);
      if (found.found) {
        localUsed = found.connection;
        local = { file: found.file, url: found.connection.url };
        api = new ApiClient(found.connection);
      } else {
        notConnected = noLocalServer(found, from);
        if (!quiet) failed = new CliError(notConnected.message, EXIT.unreachable, notConnected.hint);
      }
      who = found.found ? 'this machine\'s server (no sign-in needed)' : undefined;
    } else {
      // How this server signs people in; it answers without a token.
      try {
        const health = await new ApiClient({ url, token: '' }).get('/api/health', C.Health);
        if (methodOf(health.auth)) {
          api = await signIns.open(url, health.auth);
          offerSignIn = !api;
        } else {
          signIns.close();
          const token = await context.secrets.get(TOKEN_KEY);
          api = token ? new ApiClient({ url, token }) : undefined;
        }
      } catch (err) {
        // Unreachable for now: a session with it is kept (the next connect picks it up again).
        if (signIns.current?.url !== url) signIns.close();
        failed = err as Error;
        notConnected = { message: `${url} could not be reached: ${failed.message}`, hint: 'Check the URL (the setting odooops.serverUrl), or run "OdooOps: Connect…" again.' };
      }
      who = url;
    }
    mailBox.reset();
    if (api) await store.load();
    else store.reset();
    if (local && store.error) {
      const why = unreachableLocalServer(local.file, local.url, store.error);
      failed = new CliError(why.message, EXIT.unreachable, why.hint);
      notConnected = why;
    }
    if (failed) store.error = failed.message;
    await when('connected', !!api && !store.error);
    await when('signInOffered', offerSignIn);
    await when('signedIn', !!signIns.current?.signedIn);
    await when('hasProjects', store.projects.length > 0);
    feed = undefined;
    showStatus();
    unsubscribe = api && !store.error ? await followProjects(api, store.projects, {
      run: (r) => store.applyRun(r),
      approval: (project, id, status) => void store.reloadApprovals(project).then(() => {
        const a = store.approval(project, id);
        // The requester hears of the decision; an approved request can be run from the notification.
        if (a && a.requestedBy === store.me && status !== 'pending') commands.onDecided(project, a);
      }, () => {}),
      alert: (project, payload) => void showAlert({
        showWarning: (text, ...actions) => vscode.window.showWarningMessage(text, ...actions),
        openRun: (id) => panels.open(id),
      }, project, payload),
      rejoined: async (project) => void (await store.refreshProject(project)),
      mail: (project, m) => mailBox.arrived(project, store.environments(project).find((e) => e.id === m.environment)?.name),
      state: (state, detail) => {
        feedStates.push(state === 'reconnecting' ? `reconnecting: ${detail ?? ''}` : state);
        feed = state === 'reconnecting' ? detail ?? 'reconnecting' : undefined;
        showStatus();
      },
    }) : undefined;
    if (failed) throw failed;
  };

  const signIns = new SignIns(context, {
    ended: (reason) => {
      void connect().catch(() => {});
      void vscode.window.showWarningMessage(`OdooOps: ${reason}. Sign in again.`, 'Sign in').then((go) => go && vscode.commands.executeCommand('odooops.signIn'));
    },
    signedIn: (s) => void commands.signedIn(s),
  });
  const errors: string[] = [];
  const commands = registerCommands({ context, store, panels, need, connect, signIns, errors });

  // The local server's connection file: written when a server starts, removed when it stops. Watched
  // while no server URL is set, so one started after VS Code is picked up (and one that stopped shows
  // the welcome view). Its folder may not exist before the first server start: then its parent is
  // watched for it (not recursively: the parent may be the whole home folder).
  let watcher: vscode.Disposable | undefined;
  let settle: ReturnType<typeof setTimeout> | undefined;
  const fileChanged = () => {
    clearTimeout(settle);
    settle = setTimeout(() => {
      if (config().get<string>('serverUrl')) return;
      const now = findLocalConnection(homeNow().home);
      const same = now.found ? now.connection.url === localUsed?.url && now.connection.token === localUsed?.token : !localUsed && !api;
      if (!same) void connect(true).catch(() => {});
    }, 300);
  };
  const watchHome = () => {
    watcher?.dispose();
    const { home } = homeNow();
    if (existsSync(home)) {
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(home), basename(clientFiles(home).connection)));
      watcher = vscode.Disposable.from(w, w.onDidCreate(fileChanged), w.onDidChange(fileChanged), w.onDidDelete(fileChanged));
    } else {
      const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(dirname(home)), basename(home)), false, true, true);
      watcher = vscode.Disposable.from(w, w.onDidCreate(() => (watchHome(), fileChanged())));
    }
  };
  watchHome();
  context.subscriptions.push({ dispose: () => (watcher?.dispose(), clearTimeout(settle)) });
  // Settings changed by hand (or by Connect…, which has connected already: nothing to do then).
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('odooops.home')) {
      watchHome();
      if (!config().get<string>('serverUrl')) void commands.run('connect', () => connect());
    } else if (e.affectsConfiguration('odooops.serverUrl') && (config().get<string>('serverUrl') || '') !== connectedTo) {
      void connect(true).catch(() => {});
    }
  }));

  context.subscriptions.push({ dispose: () => void unsubscribe?.() });
  context.subscriptions.push(...registerMailViews(need));
  await commands.run('connect', () => connect(true));
  markConnected();
  return { store, tree, panels, signIns, client: () => api, feedStates, contextKeys, errors, testProblems, odooLogs: commands.odooLogs };
}

export function deactivate(): void {}
