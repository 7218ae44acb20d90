// The OdooOps tree: projects → (pending approvals) and environments (stage icon, branch, URL, last run,
// health) → backups and recent runs ("Show more…" for older ones). Drawn from the Store; a change
// refreshes only the nodes it names, and a running run's node ticks on its own while it is in sight.
// contextValue drives the menus by what your role lets you do on each node (labels.ts). Every item has
// a stable id, so VS Code keeps what was expanded across a Refresh and a window reload. People are named
// as the server knows them (Store.who); times are relative, with the UTC time in the tooltip.
import * as vscode from 'vscode';
import type * as C from '../../contract/index.ts';
import { approvalsKey, backupsKey, envKey, projectKey, type NodeKey, type Store } from './store.ts';
import { environmentIcon } from './environmentIcon.ts';
import { mailItemText, mailKey, mailNodeLabel, type MailBox } from './mailBox.ts';
import { approvalContext, backupContext, backupLabel, duration, environmentContext, itemId, paramsText, projectContext, relativeTime, runContext, tickTargets, utcTime } from './labels.ts';

export { backupLabel, duration } from './labels.ts';

export type Node =
  | { type: 'project'; project: C.Project }
  | { type: 'approvals'; project: string }
  | { type: 'approval'; project: string; approval: C.Approval }
  | { type: 'environment'; project: string; env: C.Environment }
  | { type: 'backups'; project: string; env: C.Environment }
  | { type: 'backup'; project: string; env: string; backup: C.Backup }
  | { type: 'message'; text: string; icon?: string }
  | { type: 'run'; run: C.Run }
  | { type: 'more'; project: string; env: string }
  | { type: 'mails'; project: string; env: C.Environment }
  | { type: 'mail'; project: string; env: string; mail: C.CaughtMail };

const STATUS_ICON: Record<string, [string, string?]> = {
  queued: ['clock'], running: ['sync~spin', 'charts.yellow'], succeeded: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'], cancelled: ['circle-slash'],
};
const icon = (status: string) => {
  const [id, color] = STATUS_ICON[status] ?? ['circle-outline'];
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
};
/** How often a running run's elapsed time is redrawn, and every run's "… ago". */
const TICK_MS = 1000;
const AGO_MS = 30_000;
/**
 * Text people chose (names, reasons) as Markdown text: every ASCII punctuation mark backslash-escaped
 * (CommonMark), so a name like "![x](https://tracker)", "[Sign out](command:…)" or "https://evil" shows
 * as those characters, never as an image or a link; line breaks become spaces.
 */
export const md = (text: string) => text.replace(/[!-/:-@[-`{-~]/g, '\\$&').replace(/\s+/g, ' ');
export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;

/** One line about a health run's result (the health executor's return value). */
export function healthSummary(result: unknown): string {
  const r = (result ?? {}) as { odooVersion?: string; modulesInstalled?: number; modulesPending?: number; databaseBytes?: number; neutralized?: boolean };
  return [r.odooVersion && `Odoo ${r.odooVersion}`, r.modulesInstalled !== undefined && `${r.modulesInstalled} modules`,
    r.modulesPending ? `${r.modulesPending} pending` : null, r.databaseBytes !== undefined && mib(r.databaseBytes), r.neutralized && 'neutralized']
    .filter(Boolean).join(' · ');
}

export class OdooOpsTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | Node[] | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /**
   * One object per node, kept for the life of the tree: VS Code refreshes an element by identity, so a
   * run's node must be the same object from one draw to the next (its fields are brought up to date).
   */
  private readonly nodes = new Map<string, Node>();
  /** Store keys (NodeKey) to the node that draws them. */
  private readonly byKey = new Map<NodeKey, Node>();
  /** Environments whose children were drawn and not collapsed since: their runs are in sight. */
  private readonly open = new Set<NodeKey>();
  private readonly store: Store;

  /** The mail catcher's lists ("Mail (N)" under staging and development environments), when the extension has one. */
  private readonly mail: MailBox | undefined;

  constructor(store: Store, mail?: MailBox) {
    this.store = store;
    this.mail = mail;
    mail?.onDidChange((keys) => {
      const nodes = keys.map((k) => this.byKey.get(k)).filter((n): n is Node => !!n);
      if (nodes.length) this.changed.fire(nodes);
    });
    store.onDidChange((keys) => {
      if (!keys) return this.changed.fire(undefined);
      const nodes = keys.map((k) => this.byKey.get(k)).filter((n): n is Node => !!n);
      if (nodes.length) this.changed.fire(nodes);
    });
  }

  /**
   * Binds the tree to its view: "Show more…" runs, expansion followed (what is in sight), and the clock
   * that redraws running runs' elapsed time every second and every run's "… ago" while the view shows.
   */
  attach(view: vscode.TreeView<Node>): vscode.Disposable[] {
    let ticks = 0;
    const timer = setInterval(() => {
      // Read at each tick (no event to miss): nothing is redrawn while the view is out of sight.
      if (!view.visible) return;
      const nodes = tickTargets(this.runNodesInSight(), ++ticks, Math.round(AGO_MS / TICK_MS));
      if (nodes.length) this.changed.fire(nodes);
    }, TICK_MS);
    return [
      { dispose: () => clearInterval(timer) },
      view.onDidCollapseElement(({ element }) => {
        if (element.type === 'environment') this.open.delete(envKey(element.project, element.env.name));
      }),
      vscode.commands.registerCommand('odooops.showMoreRuns', async (node?: Node) => {
        if (node?.type !== 'more') return;
        try {
          await this.store.loadMoreRuns(node.project, node.env);
        } catch (err) {
          void vscode.window.showErrorMessage(`OdooOps: older runs of ${node.env} could not be read: ${(err as Error).message}. Try again, or Refresh.`);
        }
      }),
    ];
  }

  /** The run nodes of expanded environments (drawn, so firing them redraws what is on screen). */
  runNodesInSight(): Extract<Node, { type: 'run' }>[] {
    const out: Extract<Node, { type: 'run' }>[] = [];
    for (const key of this.open) {
      const [slug, env] = key.slice('env:'.length).split('/') as [string, string];
      for (const r of this.store.runsOf(slug, env)) {
        const n = this.nodes.get(itemId.run(slug, r.id));
        if (n?.type === 'run') out.push(n);
      }
    }
    return out;
  }

  /** The node of that id, brought up to date (the same object as before, when there was one). */
  private keep<N extends Node>(id: string, fresh: N, key?: NodeKey): N {
    const known = this.nodes.get(id) as N | undefined;
    const n = known && known.type === fresh.type ? Object.assign(known, fresh) : fresh;
    this.nodes.set(id, n);
    if (key) this.byKey.set(key, n);
    return n;
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (!node) return this.store.projects.map((project) => this.keep(itemId.project(project.slug), { type: 'project', project }, projectKey(project.slug)));
    if (node.type === 'project') {
      const slug = node.project.slug;
      const envs: Node[] = this.store.environments(slug).map((env) => this.keep(itemId.environment(slug, env.name), { type: 'environment', project: slug, env }, envKey(slug, env.name)));
      return this.store.openApprovals(slug).length ? [this.keep(itemId.approvals(slug), { type: 'approvals', project: slug }, approvalsKey(slug)), ...envs] : envs;
    }
    if (node.type === 'approvals') {
      return this.store.openApprovals(node.project).map((approval) => this.keep(itemId.approval(node.project, approval.id), { type: 'approval', project: node.project, approval }));
    }
    if (node.type === 'environment') {
      const env = this.store.environment(node.project, node.env.name) ?? node.env;
      this.open.add(envKey(node.project, env.name));
      const runs = this.store.runsOf(node.project, env.name).map((run): Node => this.keep(itemId.run(node.project, run.id), { type: 'run', run }));
      return [
        this.keep(itemId.backups(node.project, env.name), { type: 'backups', project: node.project, env }, backupsKey(node.project, env.name)),
        ...runs,
        ...(this.store.hasMoreRuns(node.project, env.name) ? [this.keep(itemId.more(node.project, env.name), { type: 'more', project: node.project, env: env.name })] : []),
        // The mail catcher: staging and development only, for those who may operate them (as the API).
        ...(this.mail && env.stage !== 'production' && this.store.mayOperate(node.project, env.stage)
          ? [this.keep(`mails:${node.project}/${env.name}`, { type: 'mails', project: node.project, env }, mailKey(node.project, env.name))] : []),
      ];
    }
    if (node.type === 'mails' && this.mail) {
      try {
        const list = this.mail.list(node.project, node.env.name) ?? await this.mail.load(node.project, node.env.name);
        if (!list.mails.length) return [{ type: 'message', text: 'No mail caught yet', icon: 'info' }];
        return list.mails.map((mail) => this.keep(`mail:${node.project}/${node.env.name}/${mail.id}`, { type: 'mail', project: node.project, env: node.env.name, mail }));
      } catch (err) {
        return [{ type: 'message', text: `Mail could not be read: ${(err as Error).message}`, icon: 'warning' }];
      }
    }
    if (node.type === 'backups') {
      try {
        const list = this.store.backupsOf(node.project, node.env.name) ?? await this.store.loadBackups(node.project, node.env.name);
        if (!list.length) return [{ type: 'message', text: 'No backups yet', icon: 'info' }];
        return list.map((backup) => this.keep(itemId.backup(node.project, backup.id), { type: 'backup', project: node.project, env: node.env.name, backup }));
      } catch (err) {
        return [{ type: 'message', text: `Backups could not be read: ${(err as Error).message}`, icon: 'warning' }];
      }
    }
    return [];
  }

  /** The id VS Code keeps expansion state by: stable across refreshes and reloads. */
  private idOf(node: Node): string | undefined {
    switch (node.type) {
      case 'project': return itemId.project(node.project.slug);
      case 'approvals': return itemId.approvals(node.project);
      case 'approval': return itemId.approval(node.project, node.approval.id);
      case 'environment': return itemId.environment(node.project, node.env.name);
      case 'backups': return itemId.backups(node.project, node.env.name);
      case 'backup': return itemId.backup(node.project, node.backup.id);
      case 'run': return itemId.run(node.run.project, node.run.id);
      case 'more': return itemId.more(node.project, node.env);
      case 'message': return undefined;
      case 'mails': return `mails:${node.project}/${node.env.name}`;
      case 'mail': return `mail:${node.project}/${node.env}/${node.mail.id}`;
    }
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const item = this.draw(node);
    const id = this.idOf(node);
    if (id) item.id = id;
    return item;
  }

  /** The approval's tooltip names its backup (read when first hovered, if its environment's were not yet). */
  async resolveTreeItem(item: vscode.TreeItem, node: Node): Promise<vscode.TreeItem> {
    if (node.type === 'approval') {
      const a = node.approval;
      const what = await this.store.describeApproval(node.project, a).catch(() => paramsText(a.kind, a.params));
      item.tooltip = new vscode.MarkdownString(`${this.approvalHead(a)}\n\n${md(what)}`);
    }
    return item;
  }

  private approvalHead(a: C.Approval): string {
    const decided = a.decidedBy && a.status !== 'pending' ? `, ${a.status} by ${md(this.store.who(a.decidedBy))}` : '';
    return `**${a.kind}** on **${a.environment}**, requested by ${md(this.store.who(a.requestedBy))}${decided}${a.reason ? `\n\n${md(a.reason)}` : ''}`;
  }

  private draw(node: Node): vscode.TreeItem {
    switch (node.type) {
      case 'project': {
        const p = node.project;
        const item = new vscode.TreeItem(p.name, vscode.TreeItemCollapsibleState.Expanded);
        item.description = p.role ?? '';
        const members = this.store.membersOf(p.slug).map((m) => `${md(this.store.who(m.userId))} (${m.role})`);
        item.tooltip = new vscode.MarkdownString(`**${md(p.name)}** (\`${p.slug}\`), you are ${p.role ?? 'not a member'}${members.length ? `\n\nmembers: ${members.join(', ')}` : ''}`);
        // ":admin" offers what only a project admin may do (Invite member…).
        item.contextValue = projectContext(p.role, this.store.mayOperate(p.slug, 'development'));
        item.iconPath = new vscode.ThemeIcon('project');
        return item;
      }
      case 'approvals': {
        const n = this.store.openApprovals(node.project).length;
        const item = new vscode.TreeItem('Approvals', vscode.TreeItemCollapsibleState.Expanded);
        item.description = `${n} open`;
        item.iconPath = new vscode.ThemeIcon('shield', new vscode.ThemeColor('charts.yellow'));
        item.contextValue = 'approvals';
        return item;
      }
      case 'approval': {
        const a = node.approval;
        const item = new vscode.TreeItem(`${a.kind} ${a.environment}`, vscode.TreeItemCollapsibleState.None);
        const mine = a.requestedBy === this.store.me;
        const may = { decide: this.store.mayDecide(node.project, a), run: this.store.mayRunApproved(node.project, a) };
        item.description = a.status === 'approved'
          ? `${may.run ? 'approved: run it' : 'approved'} · ${a.reason ?? ''}`
          : `${mine ? 'waiting for another member · ' : ''}${a.reason ?? ''}`;
        const backup = typeof a.params.backup === 'string' ? this.store.backupsOf(node.project, a.environment)?.find((b) => b.id === a.params.backup) : undefined;
        // A backup not read yet: the tooltip is made on hover (resolveTreeItem), once it is.
        if (backup || typeof a.params.backup !== 'string') item.tooltip = new vscode.MarkdownString(`${this.approvalHead(a)}\n\n${md(paramsText(a.kind, a.params, backup))}`);
        item.iconPath = new vscode.ThemeIcon(a.status === 'approved' ? 'pass' : 'question');
        item.contextValue = approvalContext(a, this.store.me, may);
        return item;
      }
      case 'environment': {
        // Read the environment again: the node may be older than the store's last change.
        const env = this.store.environment(node.project, node.env.name) ?? node.env;
        const last = this.store.lastRun(node.project, env.name);
        const health = this.store.healthOf(node.project, env.name);
        const item = new vscode.TreeItem(env.name, vscode.TreeItemCollapsibleState.Collapsed);
        item.description = [env.branch, last ? `${last.kind} ${last.status}` : null, health && health.state !== 'healthy' ? health.state : null].filter(Boolean).join(' · ');
        item.tooltip = new vscode.MarkdownString([
          `**${env.name}** (${env.stage})${env.branch ? ` · branch \`${env.branch}\`` : ''}`,
          env.url ? `[${env.url}](${env.url})` : 'no URL set',
          `database \`${env.database.name}\`${env.database.server ? ` on the server \`${env.database.server}\`` : ''}${env.filestore ? ` · filestore root \`${env.filestore}\`` : ''}`,
          env.runtime ? `Odoo: runtime \`${env.runtime.name}\`${env.runtime.httpPort ? `, port ${env.runtime.httpPort}` : ''}` : 'no runtime to deploy with',
          health ? `health: **${health.state}** ${relativeTime(health.at)} (${utcTime(health.at)})${health.state === 'healthy' ? ` · ${healthSummary(health.run.result)}` : health.run.error ? ` · ${health.run.error}` : ''}` : 'health: not checked yet',
          last ? `last run: ${last.kind} #${last.id} ${last.status}, queued ${relativeTime(last.queuedAt)} (${utcTime(last.queuedAt)})` : 'no runs yet',
        ].join('\n\n'));
        const shown = environmentIcon(env.stage, last?.status, health?.state === 'unhealthy');
        item.iconPath = new vscode.ThemeIcon(shown.id, new vscode.ThemeColor(shown.color));
        // ":admin" offers what only a project admin may do (Edit Environment…); ":operate" the runs your role may queue there.
        item.contextValue = environmentContext(env.stage, this.store.roleIn(node.project), this.store.mayOperate(node.project, env.stage));
        return item;
      }
      case 'backups': {
        const list = this.store.backupsOf(node.project, node.env.name);
        const item = new vscode.TreeItem('Backups', vscode.TreeItemCollapsibleState.Collapsed);
        item.description = list ? `${list.length}` : '';
        item.iconPath = new vscode.ThemeIcon('archive');
        item.contextValue = 'backups';
        return item;
      }
      case 'backup': {
        const b = node.backup;
        const item = new vscode.TreeItem(backupLabel(b), vscode.TreeItemCollapsibleState.None);
        item.description = [relativeTime(b.createdAt), mib(b.sizeBytes), b.odooVersion && `Odoo ${b.odooVersion}`, b.masked && 'masked'].filter(Boolean).join(' · ');
        item.tooltip = `${b.kind} backup ${b.id}, made ${utcTime(b.createdAt)}${b.runId ? ` by run #${b.runId}` : ''}${b.sha256 ? `\nSHA-256 ${b.sha256}` : ''}`;
        item.iconPath = new vscode.ThemeIcon(b.masked ? 'shield' : 'database');
        const stage = this.store.environment(node.project, node.env)?.stage;
        item.contextValue = backupContext(b.kind, !!stage && this.store.mayOperate(node.project, stage));
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
        if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
        item.contextValue = 'message';
        return item;
      }
      case 'more': {
        const item = new vscode.TreeItem('Show more…', vscode.TreeItemCollapsibleState.None);
        item.tooltip = `Older runs of ${node.env}`;
        item.iconPath = new vscode.ThemeIcon('ellipsis');
        item.contextValue = 'more';
        item.command = { command: 'odooops.showMoreRuns', title: 'Show more', arguments: [node] };
        return item;
      }
      case 'run': {
        // The store's newest state of the run (a node drawn before may hold an older one).
        const r = this.store.run(node.run.project, node.run.environment, node.run.id) ?? node.run;
        const item = new vscode.TreeItem(`${r.kind} #${r.id}`, vscode.TreeItemCollapsibleState.None);
        const by = r.requestedBy ? this.store.who(r.requestedBy) : null;
        item.description = [r.status, duration(r), relativeTime(r.queuedAt), by ? `by ${by}` : null].filter(Boolean).join(' · ');
        item.tooltip = [
          `${r.kind} #${r.id} ${r.status}${by ? `, requested by ${by}` : ''}${r.error ? `: ${r.error}` : ''}`,
          `queued ${utcTime(r.queuedAt)}${r.startedAt ? `\nstarted ${utcTime(r.startedAt)}` : ''}${r.finishedAt ? `\nfinished ${utcTime(r.finishedAt)}` : ''}`,
          r.attempts > 1 ? `attempt ${r.attempts} of ${r.maxAttempts}` : '',
        ].filter(Boolean).join('\n');
        item.iconPath = icon(r.status);
        const stage = this.store.environment(r.project, r.environment)?.stage;
        item.contextValue = runContext(r.status, !!stage && this.store.mayOperate(r.project, stage));
        item.command = { command: 'odooops.openRunLogs', title: 'Open run logs', arguments: [node] };
        return item;
      }
      case 'mails': {
        const list = this.mail?.list(node.project, node.env.name);
        // The count is worth reading before the node is opened: one request per environment shown.
        if (!list && this.mail && !this.mail.error(node.project, node.env.name)) void this.mail.load(node.project, node.env.name).catch(() => {});
        const item = new vscode.TreeItem(mailNodeLabel(list), vscode.TreeItemCollapsibleState.Collapsed);
        item.tooltip = `Mail ${node.env.name} sent, caught by OdooOps (never delivered)`;
        item.iconPath = new vscode.ThemeIcon('mail');
        item.contextValue = 'mails';
        return item;
      }
      case 'mail': {
        const t = mailItemText(node.mail);
        const item = new vscode.TreeItem(t.label, vscode.TreeItemCollapsibleState.None);
        item.description = t.description;
        item.tooltip = t.tooltip;
        item.iconPath = new vscode.ThemeIcon(node.mail.attachments ? 'file-symlink-file' : 'mail');
        item.contextValue = 'mail';
        item.command = { command: 'odooops.openMail', title: 'Open mail', arguments: [node] };
        return item;
      }
    }
  }
}
