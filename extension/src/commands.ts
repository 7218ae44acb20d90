// The commands (palette and the tree's menus, chosen by contextValue). Each may also be run with a plain
// argument instead of a tree node (the extension-host tests do: { project, branch }, { backup, to }…).
// Long ones show a cancellable progress notification; failures are notifications with the server's hint.
import { homedir } from 'node:os';
import * as vscode from 'vscode';
import * as C from '../../contract/index.ts';
import { ApiClient, CliError, EXIT } from '../../client/api-client.ts';
import { uploadImport } from '../../server/cli/import.ts';
import { TOKEN_KEY } from './connection.ts';
import type { LogPanels } from './logPanel.ts';
import { envKey, progressOf, type Store } from './store.ts';
import { backupLabel, mib, type Node } from './tree.ts';
import { downloadName } from './backupFile.ts';
import { saveProblem } from '../../client/save-target.ts';
import { parseRunNumber, refusal, runItems, type RunAction, type RunItem } from './runPick.ts';
import { backupSource, cloneSource, confirmThenReplace, importSource, replacesDatabase } from './replaceConfirm.ts';
import { editEnvironment, type EditUi } from './editEnvironment.ts';
import { workspaceBranch, workspaceHead } from './workspaceGit.ts';
import { invitation, inviteeLabel, parseInvitee, ROLE_HELP, type Invitee } from './invite.ts';
import { methodOf, type SignedIn, type SignIns } from './signIn.ts';
import { productionQuestion, SHELL_TITLES, ShellTerminal, shellTerminalLook } from './shellTerminal.ts';
import { OdooLogPanels } from './odooLogPanel.ts';

export interface CommandDeps {
  context: vscode.ExtensionContext;
  store: Store;
  panels: LogPanels;
  need(): ApiClient;
  /** quiet: "no server on this machine" is not an error (activation, the connection file changing). */
  connect(quiet?: boolean): Promise<void>;
  signIns: SignIns;
  /** Each error notification shown, in order (the extension-host tests read what a person would). */
  errors: string[];
}

/** What the tests' argument says was clicked in a confirmation ("Replace", "Back up first"); a tree node says nothing. */
const answerOf = (node: unknown): string | undefined => {
  const confirm = (node as { confirm?: unknown } | undefined)?.confirm;
  return typeof confirm === 'string' ? confirm : undefined;
};

export function registerCommands({ context, store, panels, need, connect, signIns, errors }: CommandDeps) {
  const onDecided = (project: string, a: C.Approval) => {
    if (a.status === 'rejected') return void vscode.window.showWarningMessage(`OdooOps: your ${a.kind} of ${a.environment} was rejected.`);
    void vscode.window.showInformationMessage(`OdooOps: your ${a.kind} of ${a.environment} was approved.`, 'Run it now').then((go) => {
      if (go) void run('run approved', () => guard(project, a.environment, a.kind, a.params, () => queue(project, a.environment, a.kind, a.params, a.id)));
    });
  };

  const run = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      const hint = err instanceof CliError && err.hint ? ` ${err.hint}` : '';
      const text = `OdooOps: ${what} failed: ${(err as Error).message}.${hint}`;
      errors.push(text);
      void vscode.window.showErrorMessage(text);
      return undefined;
    }
  };
  const pickProject = async (node: Node | undefined): Promise<string | undefined> => {
    if (node?.type === 'project') return node.project.slug;
    if (node && 'project' in node && typeof node.project === 'string') return node.project;
    if (store.projects.length === 1) return store.projects[0]!.slug;
    return (await vscode.window.showQuickPick(store.projects.map((p) => ({ label: p.slug, description: p.name })), { placeHolder: 'Project' }))?.label;
  };
  const pickEnvironment = async (node: Node | undefined, stages: readonly C.Stage[] = C.STAGES): Promise<{ project: string; env: C.Environment } | undefined> => {
    if (node?.type === 'environment' || node?.type === 'backups') return { project: node.project, env: node.env };
    // Only where your role may run things (the server would refuse the others).
    const items = store.projects.flatMap((p) => store.environments(p.slug).filter((e) => stages.includes(e.stage) && store.mayOperate(p.slug, e.stage))
      .map((env) => ({ label: env.name, description: `${p.slug} · ${env.stage}`, project: p.slug, env })));
    if (!items.length) return void vscode.window.showInformationMessage('OdooOps: your role lets you run this on none of your projects\' environments; a project admin can change your role.');
    return vscode.window.showQuickPick(items, { placeHolder: 'Environment' });
  };
  /** Queues a run, follows it with a cancellable progress notification, opens its log beside the editor. */
  const queue = async (project: string, env: string, kind: string, params: object = {}, approvalId?: string) => {
    const body: C.QueueRun = { kind, params: params as C.QueueRun['params'], ...(approvalId ? { approvalId } : {}) };
    const { data: r } = await need().request('POST', `/api/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(env)}/runs`, C.Run, body);
    void follow(r);
    return r;
  };
  /**
   * A run that replaces an environment's database goes through the confirmation (replaceConfirm.ts):
   * what is replaced and with what, "Back up first" or "Replace". `answer` is the tests' click.
   */
  const guard = async (project: string, envName: string, kind: string, params: Record<string, unknown>, go: () => Promise<unknown>, answer?: string, file?: string) => {
    if (!replacesDatabase(kind)) return void await go();
    const env = store.environment(project, envName);
    if (!env) throw new CliError(`${project} › ${envName} is not in the tree, so what would be replaced cannot be shown`, EXIT.usage, 'Run "OdooOps: Refresh" and try again.');
    const backupOf = async (id: unknown, where: string) => typeof id === 'string' ? (await store.loadBackups(project, where).catch(() => [])).find((b) => b.id === id) : undefined;
    const source = kind === 'restore'
      ? await backupOf(params.backup, envName).then((b) => (b ? backupSource(b) : `backup ${String(params.backup)}`))
      : kind === 'clone'
        ? cloneSource(params, store.environments(project), await backupOf(params.backup, store.environments(project).find((e) => e.stage === 'production')?.name ?? ''))
        : importSource({ file, sha256: params.sha256 });
    await confirmThenReplace({ kind, project, env, source }, {
      ask: (c) => Promise.resolve(vscode.window.showWarningMessage(c.message, { modal: true, detail: c.detail }, ...c.buttons)),
      backUp: async () => {
        const { data: b } = await need().request('POST', `/api/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(envName)}/runs`, C.Run, { kind: 'backup', params: { kind: 'manual' } });
        return follow(b, `backing up ${envName} before the ${kind}`);
      },
      replace: go,
    }, answer);
  };
  /**
   * A run that was queued (here or elsewhere): its log beside the editor, its progress as a notification.
   * Resolves with the run once it has ended (a safety backup is waited for this way).
   */
  const follow = (r: C.Run, title = `${r.kind} on ${r.environment}`): Promise<C.Run> => {
    const { kind, environment: env } = r;
    store.applyRun(r);
    panels.open(r.id);
    // The notification follows the run through the store, which the live feed keeps current (no
    // polling); a read every 30 s is only a safety net for a run that fell out of the tree's list.
    return Promise.resolve(vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `OdooOps: ${title}`, cancellable: true }, (progress, token) => new Promise<C.Run>((resolve) => {
      token.onCancellationRequested(() => void need().request('POST', `/api/runs/${r.id}/cancel`, C.Run).catch(() => {}));
      let shown = '';
      let percent = 0;
      // Runs that say how far they are ("copying: 68 %") fill the notification's bar.
      const lines = panels.onLine(r.id, (l) => {
        const p = progressOf(l.line);
        if (!p || p.percent <= percent) return;
        progress.report({ increment: p.percent - percent, message: `${p.what} ${p.percent} %` });
        percent = p.percent;
      });
      const check = (now: C.Run | undefined) => {
        if (!now) return;
        if (now.status !== shown && !percent) progress.report({ message: (shown = now.status) });
        if (!(C.TERMINAL_STATUSES as readonly string[]).includes(now.status)) return;
        lines.dispose();
        off();
        clearInterval(safety);
        if (now.status === 'failed') void vscode.window.showErrorMessage(`OdooOps: ${kind} on ${env} failed: ${now.error ?? ''}`, 'Open run logs').then((a) => a && panels.open(r.id));
        resolve(now);
      };
      const off = store.onDidChange((keys) => {
        if (!keys || keys.includes(envKey(r.project, env))) check(store.run(r.project, env, r.id));
      });
      const safety = setInterval(() => void need().get(`/api/runs/${r.id}`, C.Run).then((now) => (store.applyRun(now), check(now)), () => {}), 30_000);
      check(store.run(r.project, env, r.id) ?? r);
    })));
  };
  const requestApproval = async (project: string, env: string, body: C.RequestApproval) => {
    await need().request('POST', `/api/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(env)}/approvals`, C.Approval, body);
    await store.reloadApprovals(project);
    void vscode.window.showInformationMessage(`OdooOps: a ${body.kind} of ${env} needs another member's approval; it was requested. You will be told here when it is decided.`);
  };

  const register = (id: string, fn: (node?: Node) => Promise<unknown>) => context.subscriptions.push(vscode.commands.registerCommand(id, (node?: Node) => fn(node)));
  register('odooops.refresh', () => run('refresh', () => connect()));
  // Connect…: a server URL (empty: the one on this machine). One that offers sign-in is signed in to
  // (offered here, and on the welcome view); one that offers none takes a token (odooops token).
  // Only a connect that worked is kept: a failed one puts back the URL and token in use before.
  // Tests pass { url, token? } instead of typing.
  register('odooops.connect', (node) => run('connect', async () => {
    const arg = node as unknown as { url?: string; token?: string } | undefined;
    const settings = () => vscode.workspace.getConfiguration('odooops');
    const previous = { url: settings().get<string>('serverUrl') || '', token: await context.secrets.get(TOKEN_KEY) };
    const url = arg?.url ?? await vscode.window.showInputBox({ prompt: 'OdooOps server URL (empty: the server on this machine)', value: previous.url });
    if (url === undefined) return;
    let token: string | undefined;
    if (url) {
      if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new CliError(`${url} is not an http(s) URL`, EXIT.usage, 'Type the address the server printed, e.g. https://odooops.example.com.');
      // What the server offers; it answers this without a token.
      const health = await new ApiClient({ url, token: '' }).get('/api/health', C.Health);
      if (!methodOf(health.auth)) {
        token = arg?.token ?? await vscode.window.showInputBox({ prompt: `${url} offers no sign-in: its operator prints a token with odooops token --user <your id>`, password: true, ignoreFocusOut: true });
        if (!token) return;
        // Tried before anything is kept.
        await new ApiClient({ url, token }).get('/api/me', C.Me);
      }
    }
    const keep = async (u: string, t: string | undefined) => {
      if (t) await context.secrets.store(TOKEN_KEY, t);
      else await context.secrets.delete(TOKEN_KEY);
      if ((settings().get<string>('serverUrl') || '') !== u) await settings().update('serverUrl', u || undefined, vscode.ConfigurationTarget.Global);
    };
    // A server that signs people in keeps its sessions elsewhere (signIn.ts): the token stays as it was.
    await keep(url, url ? token ?? previous.token : undefined);
    try {
      await connect();
      if (store.error) throw new Error(store.error);
    } catch (err) {
      await keep(previous.url, previous.token);
      await connect(true).catch(() => {});
      const hint = err instanceof CliError && err.hint ? `${err.hint} ` : '';
      throw new CliError((err as Error).message, EXIT.unreachable, `${hint}Nothing was saved: OdooOps stays on ${previous.url || 'the server on this machine'}.`);
    }
    const offered = signIns.current;
    if (offered && !offered.signedIn && !arg) {
      void vscode.window.showInformationMessage(`OdooOps: ${url} signs you in with your GitHub account${offered.method === 'supabase' ? ' (through Supabase)' : ''}.`, 'Sign in with GitHub')
        .then((go) => go && vscode.commands.executeCommand('odooops.signIn'));
    }
  }));
  /** After a sign-in: who you are here, and the projects an invitation just made you a member of. */
  const signedIn = async (s: SignedIn) => {
    await connect();
    const name = s.user.name ?? s.user.githubLogin ?? s.user.email ?? 'you';
    const joined = s.joined.length ? ` You joined ${s.joined.map((j) => `${j.project} as ${j.role}`).join(', ')}.` : '';
    const none = store.projects.length ? '' : ' You are not a member of any project yet: ask a project admin to invite your GitHub login or email.';
    void vscode.window.showInformationMessage(`OdooOps: signed in to ${signIns.current?.url ?? 'the server'} as ${name}.${joined}${none}`);
  };
  register('odooops.signIn', () => run('sign-in', async () => {
    if (!signIns.current) {
      const url = vscode.workspace.getConfiguration('odooops').get<string>('serverUrl');
      throw new CliError(url ? `${url} offers no sign-in` : 'the server on this machine needs no sign-in', EXIT.usage,
        url ? 'Its operator prints a token (odooops token): "OdooOps: Connect…" takes it.' : 'To use your team\'s server, run "OdooOps: Connect…" with its URL.');
    }
    await signedIn(await signIns.signIn());
  }));
  register('odooops.signOut', () => run('sign-out', async () => {
    const url = signIns.current?.url;
    if (!url) return void vscode.window.showInformationMessage('OdooOps: not signed in to any server.');
    const { revoked, error } = await signIns.signOut();
    await connect();
    if (revoked) void vscode.window.showInformationMessage(`OdooOps: signed out of ${url}.`);
    else void vscode.window.showWarningMessage(`OdooOps: signed out here, but ${url} could not be told (${error}): the session's tokens stay valid until they expire.`);
  }));
  // Invite member… (project admins; the menu shows it to them, the server refuses anyone else): a
  // GitHub login or an email, and a role. Tests pass { project, invitee, role }.
  register('odooops.inviteMember', (node) => run('invite', async () => {
    const arg = node as unknown as { project?: string; invitee?: string; role?: C.Role } | undefined;
    const admin = store.projects.filter((p) => p.role === 'admin');
    const project = arg?.project && !('type' in arg) ? arg.project : node?.type === 'project' ? node.project.slug
      : admin.length === 1 ? admin[0]!.slug
      : (await vscode.window.showQuickPick(admin.map((p) => ({ label: p.slug, description: p.name })), { placeHolder: admin.length ? 'Project to invite to' : 'You are an admin of no project' }))?.label;
    if (!project) return;
    let invitee: Invitee | undefined;
    if (arg?.invitee !== undefined) {
      const parsed = parseInvitee(arg.invitee);
      if (typeof parsed === 'string') throw new CliError(parsed, EXIT.usage);
      invitee = parsed;
    } else {
      const text = await vscode.window.showInputBox({
        prompt: `Invite to ${project}: their GitHub login, or their email address (a verified email of their GitHub account)`,
        placeHolder: 'octocat or ana@example.com', ignoreFocusOut: true,
        validateInput: (v) => { const r = parseInvitee(v); return typeof r === 'string' ? r : null; },
      });
      if (!text) return;
      invitee = parseInvitee(text) as Invitee;
    }
    const role = arg?.role ?? (await vscode.window.showQuickPick(C.ROLES.map((r) => ({ label: r, description: ROLE_HELP[r] })), { placeHolder: `Role of ${inviteeLabel(invitee)} in ${project}` }))?.label;
    if (!role) return;
    const { status, data } = await need().request('POST', `/api/projects/${encodeURIComponent(project)}/invitations`, C.Invitation, invitation(invitee, role));
    void vscode.window.showInformationMessage(`OdooOps: ${status === 200 ? 'invited again' : 'invited'} ${inviteeLabel(invitee)} to ${project} as ${data.role}: they become a member when they first sign in with GitHub, until ${data.expiresAt.slice(0, 10)}.`);
    return data;
  }));
  register('odooops.cloneProdToStaging', (node) => run('clone', async () => {
    const target = await pickEnvironment(node, ['staging', 'development']);
    if (target) await guard(target.project, target.env.name, 'clone', {}, () => queue(target.project, target.env.name, 'clone'), answerOf(node));
  }));
  register('odooops.backupNow', (node) => run('backup', async () => {
    const target = await pickEnvironment(node);
    if (target) await queue(target.project, target.env.name, 'backup', { kind: 'manual' });
  }));
  const pickBackup = async (project: string, env: string, placeHolder: string): Promise<C.Backup | undefined> => {
    const list = await store.loadBackups(project, env);
    return (await vscode.window.showQuickPick(list.map((b) => ({ label: backupLabel(b), description: `${mib(b.sizeBytes)} · Odoo ${b.odooVersion ?? '?'}`, b })), { placeHolder }))?.b;
  };
  /** Into production only through another member's approval (the control plane's rule); elsewhere once confirmed. */
  const restore = async (project: string, env: C.Environment, b: C.Backup, answer?: string) => {
    const label = backupLabel(b);
    if (env.stage === 'production') return requestApproval(project, env.name, { kind: 'restore', params: { backup: b.id }, reason: `restore of the ${label} backup, requested from VS Code` });
    await guard(project, env.name, 'restore', { backup: b.id }, () => queue(project, env.name, 'restore', { backup: b.id }), answer);
  };
  register('odooops.restoreBackup', (node) => run('restore', async () => {
    if (node?.type === 'backup') {
      // A backup's own menu: into the environment it belongs to.
      const env = store.environment(node.project, node.env);
      return env && restore(node.project, env, node.backup, answerOf(node));
    }
    const target = await pickEnvironment(node);
    const b = target && await pickBackup(target.project, target.env.name, 'Backup to restore');
    if (target && b) await restore(target.project, target.env, b, answerOf(node));
  }));
  register('odooops.createDevEnvironment', (node) => run('create development environment', async () => {
    const arg = node as unknown as { project?: string; branch?: string; then?: C.CreateDevEnvironment['then'] } | undefined;
    const project = arg?.project && !('type' in arg) ? arg.project : await pickProject(node);
    if (!project) return;
    const branch = arg?.branch ?? await vscode.window.showInputBox({
      prompt: `Branch of ${project}'s repository to make a development environment of`,
      value: await workspaceBranch(), ignoreFocusOut: true,
      validateInput: (v) => { const r = C.BranchName.safeParse(v); return r.success ? null : r.error.issues[0]!.message; },
    });
    if (!branch) return;
    const body: C.CreateDevEnvironment = { branch: C.BranchName.parse(branch), ...(arg?.then ? { then: arg.then } : {}) };
    const { data } = await need().request('POST', `/api/projects/${encodeURIComponent(project)}/dev-environments`, C.DevEnvironment, body);
    store.putEnvironment(data.environment);
    if (data.run) return void follow(data.run);
    const choice = await vscode.window.showInformationMessage(
      `OdooOps: ${data.environment.name} ${data.created ? 'was created' : 'exists'} for ${branch}. ${project} has no repository to deploy from; fill it with a masked copy of production?`,
      'Clone production into it');
    // An environment that existed has a database the clone replaces: confirmed like any other.
    if (choice && data.created) await queue(project, data.environment.name, 'clone');
    else if (choice) await guard(project, data.environment.name, 'clone', {}, () => queue(project, data.environment.name, 'clone'));
  }));
  register('odooops.deploy', (node) => run('deploy', async () => {
    const arg = node as unknown as { project?: string; environment?: string; revision?: string } | undefined;
    const target = arg?.environment && arg.project ? { project: arg.project, env: store.environment(arg.project, arg.environment)! } : await pickEnvironment(node);
    if (!target?.env) return;
    let params: { revision?: string; branch?: string } | undefined = arg?.revision ? { revision: arg.revision } : undefined;
    if (!params) {
      const head = await workspaceHead();
      const items = [
        ...(target.env.branch ? [{ label: `$(git-branch) ${target.env.branch}`, description: 'its newest commit when the worker fetches', params: { branch: target.env.branch } }] : []),
        ...(head ? [{ label: `$(git-commit) ${head.slice(0, 7)}`, description: 'the commit checked out in this workspace', params: { revision: head } }] : []),
        { label: '$(edit) Another commit…', description: 'a full commit id', params: undefined },
      ];
      const pick = await vscode.window.showQuickPick(items, { placeHolder: `What to deploy to ${target.env.name}` });
      if (!pick) return;
      params = pick.params ?? await vscode.window.showInputBox({
        prompt: 'Commit id (40 hex digits)', ignoreFocusOut: true,
        validateInput: (v) => /^[0-9a-f]{40}$/.test(v) ? null : 'a full commit id: 40 lower-case hex digits (git rev-parse HEAD)',
      }).then((revision) => revision ? { revision } : undefined);
      if (!params) return;
    }
    if (target.env.stage === 'production') {
      try {
        return await queue(target.project, target.env.name, 'deploy', params);
      } catch (err) {
        // Projects that want a second person on production deploys refuse the run: ask for that instead.
        if (!(err instanceof CliError) || !/needs an approval/.test(err.message)) throw err;
        return requestApproval(target.project, target.env.name, { kind: 'deploy', params, reason: `deploy of ${params.revision?.slice(0, 7) ?? params.branch}, requested from VS Code` });
      }
    }
    await queue(target.project, target.env.name, 'deploy', params);
  }));
  // Admins only (the menu shows it to them; the server refuses anyone else).
  register('odooops.editEnvironment', (node) => run('edit environment', async () => {
    const arg = node as unknown as { project?: string; environment?: string; set?: C.UpdateEnvironment } | undefined;
    const isAdmin = (slug: string) => store.projects.find((p) => p.slug === slug)?.role === 'admin';
    const target = arg?.environment && arg.project
      ? { project: arg.project, env: store.environment(arg.project, arg.environment)! }
      : node?.type === 'environment' ? { project: node.project, env: node.env }
      : await vscode.window.showQuickPick(store.projects.filter((p) => isAdmin(p.slug)).flatMap((p) => store.environments(p.slug)
        .map((env) => ({ label: env.name, description: `${p.slug} · ${env.stage}`, project: p.slug, env }))), { placeHolder: 'Environment to edit' });
    if (!target?.env) return;
    const ui: EditUi = {
      pick: async (items, placeHolder) => vscode.window.showQuickPick(items, { placeHolder }),
      input: async (prompt, value, validate) => vscode.window.showInputBox({ prompt, value, ignoreFocusOut: true, validateInput: validate }),
    };
    const updated = await editEnvironment(need(), ui, target.project, target.env, arg?.set);
    if (!updated) return;
    store.updateEnvironment(updated);
    void vscode.window.showInformationMessage(`OdooOps: ${updated.name} updated.`);
  }));
  register('odooops.checkHealth', (node) => run('health check', async () => {
    const target = await pickEnvironment(node);
    if (target) await queue(target.project, target.env.name, 'health');
  }));
  const pickApproval = async (node: Node | undefined, status: C.Approval['status']) => {
    if (node?.type === 'approval') return node;
    const items = store.projects.flatMap((p) => store.openApprovals(p.slug).filter((a) => status === 'pending' ? store.mayDecide(p.slug, a) : store.mayRunApproved(p.slug, a))
      .map((approval) => ({ label: `${approval.kind} ${approval.environment}`, description: `${p.slug} · ${approval.reason ?? ''}`, project: p.slug, approval })));
    if (!items.length) {
      void vscode.window.showInformationMessage(`OdooOps: no approval is ${status === 'pending' ? 'waiting for your decision (your own requests are decided by another member)' : 'approved and waiting for you to run it'}.`);
      return undefined;
    }
    return vscode.window.showQuickPick(items, { placeHolder: 'Approval' });
  };
  for (const decision of ['approve', 'reject'] as const) {
    register(`odooops.${decision}`, (node) => run(decision, async () => {
      const pick = await pickApproval(node, 'pending');
      if (!pick) return;
      const { approval: a } = pick;
      if (decision === 'approve') {
        const detail = `requested by ${store.who(a.requestedBy)}${a.reason ? `: ${a.reason}` : ''}\n${await store.describeApproval(pick.project, a)}`;
        const ok = await vscode.window.showWarningMessage(`Approve the ${a.kind} of ${a.environment} (${pick.project})?`, { modal: true, detail }, 'Approve');
        if (ok !== 'Approve') return;
      }
      const { data } = await need().request('POST', `/api/approvals/${a.id}/${decision}`, C.Approval);
      await store.reloadApprovals(pick.project);
      // A push's deploy was requested by OdooOps itself: whoever approves it may start it.
      if (data.status === 'approved' && data.requestedBy === C.SERVICE_USER_ID) await queue(pick.project, data.environment, data.kind, data.params, data.id);
      else void vscode.window.showInformationMessage(`OdooOps: the ${a.kind} of ${a.environment} was ${data.status}.`);
    }));
  }
  register('odooops.runApproved', (node) => run('run approved', async () => {
    const pick = await pickApproval(node, 'approved');
    if (!pick) return;
    const { approval: a } = pick;
    // An approval is not a confirmation: whoever runs it is shown what it replaces, every time.
    await guard(pick.project, a.environment, a.kind, a.params, () => queue(pick.project, a.environment, a.kind, a.params, a.id), answerOf(node));
  }));
  register('odooops.downloadBackup', (node) => run('download', async () => {
    const arg = node as unknown as { backup?: string; to?: string } | undefined;
    let backup: { id: string; label: string; file: string } | undefined;
    const named = (b: C.Backup, env: string) => ({ id: b.id, label: `${env}-${b.kind}`, file: downloadName(b, env) });
    if (node?.type === 'backup') backup = named(node.backup, node.env);
    else if (arg?.backup) backup = { id: C.Uuid.parse(arg.backup), label: 'backup', file: 'backup.zip' };
    else {
      const target = await pickEnvironment(node);
      const b = target && await pickBackup(target.project, target.env.name, 'Backup to download');
      if (!target || !b) return;
      backup = named(b, target.env.name);
    }
    // Where it goes is checked before the download starts; a place it cannot go offers the dialog again.
    const ask = (at?: vscode.Uri) => vscode.window.showSaveDialog({
      title: 'Save the backup as an Odoo zip (restorable from Odoo\'s database manager)',
      defaultUri: at ?? vscode.Uri.joinPath(vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(homedir()), backup.file),
      filters: { 'Odoo backup': ['zip'] },
    });
    let to = arg?.to ? vscode.Uri.file(arg.to) : await ask();
    for (;;) {
      if (!to) return;
      const problem = await saveProblem(to.fsPath);
      if (!problem) break;
      if (arg?.to) throw new CliError(problem.message, EXIT.usage, problem.hint);
      const again = await vscode.window.showErrorMessage(`OdooOps: ${problem.message}; nothing was downloaded.`, { modal: true, detail: problem.hint }, 'Choose another place…');
      to = again ? await ask(vscode.Uri.joinPath(vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(homedir()), backup.file)) : undefined;
    }
    const saved = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `OdooOps: downloading ${backup.label}`, cancellable: true }, async (progress, token) => {
      const abort = new AbortController();
      token.onCancellationRequested(() => abort.abort());
      let shown = 0;
      return need().download(`/api/backups/${backup.id}/download`, to.fsPath, (bytes) => {
        if (bytes - shown < 2 ** 20) return;
        shown = bytes;
        progress.report({ message: mib(bytes) });
      }, undefined, abort.signal);
    });
    void vscode.window.showInformationMessage(`OdooOps: saved ${saved.file} (${mib(saved.bytes)}).`, 'Reveal')
      .then((open) => open && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(saved.file)));
  }));
  // Import database…: an Odoo zip or a pg_dump (and its filestore tarball) uploaded with a progress bar,
  // then its run followed like any other; into production, the approval for exactly this upload is requested.
  register('odooops.importDatabase', (node) => run('import', async () => {
    const arg = node as unknown as { project?: string; env?: string; file?: string; filestore?: string; confirm?: string } | undefined;
    const target = arg?.project && arg.env
      ? { project: arg.project, env: store.environments(arg.project).find((e) => e.name === arg.env) ?? { name: arg.env, stage: 'staging' as C.Stage } }
      : await pickEnvironment(node);
    if (!target) return;
    let file = arg?.file;
    let filestore = arg?.filestore;
    if (!file) {
      const picked = await vscode.window.showOpenDialog({ title: `Import a database into ${target.env.name}`, canSelectMany: false, openLabel: 'Import',
        filters: { 'Odoo backup (zip) or pg_dump -Fc': ['zip', 'dump', 'pgc', 'backup'], 'All files': ['*'] } });
      if (!picked?.[0]) return;
      file = picked[0].fsPath;
      if (!file.endsWith('.zip')) {
        const fs = await vscode.window.showOpenDialog({ title: 'Its filestore (a tar or tar.gz), or cancel for none', canSelectMany: false, openLabel: 'Use this filestore',
          filters: { 'Filestore tarball': ['tar', 'gz', 'tgz'] } });
        filestore = fs?.[0]?.fsPath;
      }
    }
    const picked = file;
    const send = async () => {
      const { upload } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `OdooOps: uploading to ${target.env.name}`, cancellable: true }, async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let percent = 0;
        return uploadImport(need(), encodeURIComponent(target.project), encodeURIComponent(target.env.name), picked, filestore, (sent, total) => {
          const now = total ? Math.floor((sent / total) * 100) : 0;
          if (now > percent) progress.report({ increment: now - percent, message: `${mib(sent)}${total ? ` of ${mib(total)}` : ''}` });
          percent = Math.max(percent, now);
        }, abort.signal);
      });
      if (upload.run) return void follow(upload.run);
      return requestApproval(target.project, target.env.name, { kind: 'import', params: upload.params, reason: `import of an Odoo ${upload.odooVersion} database (${mib(upload.bytes)}, sha256 ${upload.sha256.slice(0, 12)}…), requested from VS Code` });
    };
    // Into production the upload only asks for an approval; whoever runs that approved import confirms it.
    if (target.env.stage === 'production') return send();
    return guard(target.project, target.env.name, 'import', {}, send, arg?.confirm, picked);
  }));
  /**
   * The run an action is for: the tree's node, { runId } (tests, notifications), or, from the palette,
   * a project (when there are several) and then one of its recent runs the action applies to, or a run
   * number typed as the CLI shows it.
   */
  const pickRun = async (node: Node | undefined, action: RunAction, placeHolder: string): Promise<C.Run | undefined> => {
    const checked = (r: C.Run) => {
      const why = refusal(action, r);
      if (why) throw new CliError(why, EXIT.usage);
      return r;
    };
    const byNumber = async (n: number) => checked(await need().get(`/api/runs/${n}`, C.Run));
    if (node?.type === 'run') return node.run;
    const typed = (node as { runId?: unknown } | undefined)?.runId;
    if (typed !== undefined) {
      const n = parseRunNumber(String(typed));
      if (!n) throw new CliError(`${String(typed)} is not a run number`, EXIT.usage, 'A run number as `odooops run list` shows it, e.g. 42.');
      return byNumber(n);
    }
    need();
    const project = await pickProject(node);
    if (!project) return undefined;
    const recent = await need().get(`/api/runs?project=${encodeURIComponent(project)}&limit=50`, C.Run.array());
    const items = runItems(action, recent, (u) => store.who(u));
    const qp = vscode.window.createQuickPick<RunItem | (vscode.QuickPickItem & { number: number })>();
    qp.placeholder = `${placeHolder} in ${project}: pick one, or type its number (as \`odooops run list\` shows it)`;
    qp.matchOnDescription = true;
    qp.items = items;
    const picked = await new Promise<RunItem | { number: number } | undefined>((resolve) => {
      qp.onDidChangeValue((v) => {
        const n = parseRunNumber(v);
        qp.items = n && !items.some((i) => i.run.id === n) ? [{ label: `#${n}`, description: 'the run with this number', alwaysShow: true, number: n }, ...items] : items;
      });
      qp.onDidAccept(() => resolve(qp.selectedItems[0]));
      qp.onDidHide(() => resolve(undefined));
      qp.show();
    });
    qp.dispose();
    if (!picked) return undefined;
    return 'run' in picked ? picked.run : byNumber(picked.number);
  };
  register('odooops.cancelRun', (node) => run('cancel', async () => {
    const r = await pickRun(node, 'cancel', 'Run to cancel');
    if (!r) return;
    store.applyRun((await need().request('POST', `/api/runs/${r.id}/cancel`, C.Run)).data);
  }));
  register('odooops.rerun', (node) => run('re-run', async () => {
    const r = await pickRun(node, 'rerun', 'Run to run again');
    if (!r) return;
    await guard(r.project, r.environment, r.kind, r.params, () => queue(r.project, r.environment, r.kind, r.params), answerOf(node));
  }));
  register('odooops.retryRun', (node) => run('retry', async () => {
    const r = await pickRun(node, 'retry', 'Failed run to retry');
    if (!r) return;
    await guard(r.project, r.environment, r.kind, r.params, async () => store.applyRun((await need().request('POST', `/api/runs/${r.id}/retry`, C.Run)).data), answerOf(node));
  }));
  register('odooops.openRunLogs', (node) => run('open run logs', async () => {
    // A run number is opened as it is (the panel says if there is no such run): no read first.
    const typed = (node as { runId?: unknown } | undefined)?.runId;
    const n = node?.type === 'run' ? node.run.id : typed !== undefined ? parseRunNumber(String(typed)) : undefined;
    if (n === null) throw new CliError(`${String(typed)} is not a run number`, EXIT.usage, 'A run number as `odooops run list` shows it, e.g. 42.');
    const id = n ?? (await pickRun(node, 'logs', 'Run whose log to open'))?.id;
    if (id) panels.open(id);
  }));
  register('odooops.openEnvironment', (node) => run('open in browser', async () => {
    const target = node?.type === 'environment' ? { project: node.project, env: node.env } : await (async () => {
      const withUrl = store.projects.flatMap((p) => store.environments(p.slug).filter((e) => e.url).map((env) => ({ label: env.name, description: `${p.slug} · ${env.url}`, project: p.slug, env })));
      if (!withUrl.length) throw new CliError('no environment has a URL to open', EXIT.usage, 'A project admin sets one with "Edit Environment…" (or `odooops env set`).');
      return vscode.window.showQuickPick(withUrl, { placeHolder: 'Environment to open in the browser' });
    })();
    if (!target) return;
    if (!target.env.url) throw new CliError(`${target.project} › ${target.env.name} has no URL`, EXIT.usage, 'A project admin sets one with "Edit Environment…".');
    await vscode.env.openExternal(vscode.Uri.parse(target.env.url));
  }));
  // Open shell / Open psql / Open Odoo shell: a terminal whose process runs where the environment's Odoo
  // runs (the server decides what and where; the menus show them only where your role may operate).
  const openShell = (kind: C.ShellKind) => (node?: Node) => run(`open ${SHELL_TITLES[kind]}`, async () => {
    const arg = node as { project?: unknown; environment?: unknown } | undefined;
    const named = typeof arg?.project === 'string' && typeof arg.environment === 'string' ? store.environment(arg.project, arg.environment) : undefined;
    const target = named ? { project: arg!.project as string, env: named } : await pickEnvironment(node);
    if (!target) return undefined;
    const { project, env } = target;
    let confirmProduction = false;
    if (env.stage === 'production') {
      const q = productionQuestion(project, env.name, kind);
      const answer = answerOf(node) ?? await vscode.window.showWarningMessage(q.message, { modal: true, detail: q.detail }, q.button);
      if (answer !== q.button) return undefined;
      confirmProduction = true;
    }
    const api = need();
    const pty = new ShellTerminal({ url: api.target.url, token: () => api.bearer(), project, environment: env.name, kind, confirmProduction });
    const look = shellTerminalLook(project, env.name, env.stage, kind);
    const terminal = vscode.window.createTerminal({
      name: look.name, pty, color: new vscode.ThemeColor(look.color), iconPath: new vscode.ThemeIcon(kind === 'psql' ? 'database' : 'terminal'),
    });
    terminal.show();
    return { terminal, pty };
  });
  register('odooops.openShell', openShell('shell'));
  register('odooops.openPsql', openShell('psql'));
  register('odooops.openOdooShell', openShell('odoo'));
  // The running Odoo's own log, followed while its panel is open (odooLogPanel.ts); where your role may operate.
  const odooLogs = new OdooLogPanels(context, async () => {
    try {
      return need();
    } catch {
      return undefined;
    }
  });
  register('odooops.showOdooLog', (node) => run('show Odoo log', async () => {
    const arg = node as unknown as { project?: unknown; environment?: unknown } | undefined;
    const target = typeof arg?.project === 'string' && typeof arg.environment === 'string' && !('type' in arg)
      ? { project: arg.project, env: { name: arg.environment } } : await pickEnvironment(node);
    if (target) odooLogs.open(target.project, target.env.name);
  }));

  return { run, onDecided, signedIn, odooLogs };
}
