// The OdooOps tree: projects → (pending approvals) and environments (stage icon, branch, URL, last run,
// health) → backups and recent runs. Drawn from the Store; a change refreshes only the nodes it names.
// contextValue drives the menus: "project[:admin]", "environment:<stage>[:admin]", "run:<status>",
// "backup:<kind>", "approval:pending". People are named as the server knows them (Store.who).
import * as vscode from 'vscode';
import type * as C from '../../contract/index.ts';
import { approvalsKey, backupsKey, envKey, projectKey, type NodeKey, type Store } from './store.ts';
import { environmentIcon } from './environmentIcon.ts';

export type Node =
  | { type: 'project'; project: C.Project }
  | { type: 'approvals'; project: string }
  | { type: 'approval'; project: string; approval: C.Approval }
  | { type: 'environment'; project: string; env: C.Environment }
  | { type: 'backups'; project: string; env: C.Environment }
  | { type: 'backup'; project: string; env: string; backup: C.Backup }
  | { type: 'message'; text: string; icon?: string }
  | { type: 'run'; run: C.Run };

const STATUS_ICON: Record<string, [string, string?]> = {
  queued: ['clock'], running: ['sync~spin', 'charts.yellow'], succeeded: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'], cancelled: ['circle-slash'],
};
const icon = (status: string) => {
  const [id, color] = STATUS_ICON[status] ?? ['circle-outline'];
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
};
const when = (iso: string) => iso.slice(0, 16).replace('T', ' ');
/**
 * Text people chose (names, reasons) as Markdown text: every ASCII punctuation mark backslash-escaped
 * (CommonMark), so a name like "![x](https://tracker)", "[Sign out](command:…)" or "https://evil" shows
 * as those characters, never as an image or a link; line breaks become spaces.
 */
export const md = (text: string) => text.replace(/[!-/:-@[-`{-~]/g, '\\$&').replace(/\s+/g, ' ');
/** How a backup is named in the tree and in pickers: its kind and when it was made. */
export const backupLabel = (b: C.Backup) => `${b.kind} ${when(b.createdAt)}`;
export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;

export function duration(run: C.Run, now = Date.now()): string {
  if (!run.startedAt) return '';
  const s = Math.round(((run.finishedAt ? Date.parse(run.finishedAt) : now) - Date.parse(run.startedAt)) / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

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
  private readonly nodes = new Map<NodeKey, Node>();
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
    store.onDidChange((keys) => {
      if (!keys) return this.changed.fire(undefined);
      const nodes = keys.map((k) => this.nodes.get(k)).filter((n): n is Node => !!n);
      if (nodes.length) this.changed.fire(nodes);
    });
  }

  private keep<N extends Node>(key: NodeKey, n: N): N {
    this.nodes.set(key, n);
    return n;
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (!node) return this.store.projects.map((project) => this.keep(projectKey(project.slug), { type: 'project', project }));
    if (node.type === 'project') {
      const slug = node.project.slug;
      const envs: Node[] = this.store.environments(slug).map((env) => this.keep(envKey(slug, env.name), { type: 'environment', project: slug, env }));
      return this.store.openApprovals(slug).length ? [this.keep(approvalsKey(slug), { type: 'approvals', project: slug }), ...envs] : envs;
    }
    if (node.type === 'approvals') return this.store.openApprovals(node.project).map((approval) => ({ type: 'approval', project: node.project, approval }));
    if (node.type === 'environment') {
      const env = this.store.environment(node.project, node.env.name) ?? node.env;
      return [
        this.keep(backupsKey(node.project, env.name), { type: 'backups', project: node.project, env }),
        ...this.store.runsOf(node.project, env.name).map((run): Node => ({ type: 'run', run })),
      ];
    }
    if (node.type === 'backups') {
      try {
        const list = this.store.backupsOf(node.project, node.env.name) ?? await this.store.loadBackups(node.project, node.env.name);
        if (!list.length) return [{ type: 'message', text: 'No backups yet', icon: 'info' }];
        return list.map((backup) => ({ type: 'backup', project: node.project, env: node.env.name, backup }));
      } catch (err) {
        return [{ type: 'message', text: `Backups could not be read: ${(err as Error).message}`, icon: 'warning' }];
      }
    }
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    switch (node.type) {
      case 'project': {
        const p = node.project;
        const item = new vscode.TreeItem(p.name, vscode.TreeItemCollapsibleState.Expanded);
        item.description = p.role ?? '';
        const members = this.store.membersOf(p.slug).map((m) => `${md(this.store.who(m.userId))} (${m.role})`);
        item.tooltip = new vscode.MarkdownString(`**${md(p.name)}** (\`${p.slug}\`), you are ${p.role ?? 'not a member'}${members.length ? `\n\nmembers: ${members.join(', ')}` : ''}`);
        // ":admin" offers what only a project admin may do (Invite member…).
        item.contextValue = p.role === 'admin' ? 'project:admin' : 'project';
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
        item.description = a.reason ?? '';
        const decided = a.decidedBy && a.status !== 'pending' ? `, ${a.status} by ${md(this.store.who(a.decidedBy))}` : '';
        item.tooltip = new vscode.MarkdownString(`**${a.kind}** on **${a.environment}**, requested by ${md(this.store.who(a.requestedBy))}${decided}\n\n${md(a.reason ?? '')}\n\nparams: \`${JSON.stringify(a.params)}\``);
        item.iconPath = new vscode.ThemeIcon(a.status === 'approved' ? 'pass' : 'question');
        if (a.status === 'approved') item.description = `approved: run it · ${a.reason ?? ''}`;
        item.contextValue = `approval:${a.status}`;
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
          health ? `health: **${health.state}** at ${when(health.at)}${health.state === 'healthy' ? ` · ${healthSummary(health.run.result)}` : health.run.error ? ` · ${health.run.error}` : ''}` : 'health: not checked yet',
          last ? `last run: ${last.kind} #${last.id} ${last.status}` : 'no runs yet',
        ].join('\n\n'));
        const shown = environmentIcon(env.stage, last?.status, health?.state === 'unhealthy');
        item.iconPath = new vscode.ThemeIcon(shown.id, new vscode.ThemeColor(shown.color));
        // ":admin" offers what only a project admin may do (Edit Environment…).
        const admin = this.store.projects.find((p) => p.slug === node.project)?.role === 'admin';
        item.contextValue = `environment:${env.stage}${admin ? ':admin' : ''}`;
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
        item.description = [mib(b.sizeBytes), b.odooVersion && `Odoo ${b.odooVersion}`, b.masked && 'masked'].filter(Boolean).join(' · ');
        item.tooltip = `${b.kind} backup ${b.id}${b.runId ? ` (run #${b.runId})` : ''}${b.sha256 ? `\nSHA-256 ${b.sha256}` : ''}`;
        item.iconPath = new vscode.ThemeIcon(b.masked ? 'shield' : 'database');
        item.contextValue = `backup:${b.kind}`;
        return item;
      }
      case 'message': {
        const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
        if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
        item.contextValue = 'message';
        return item;
      }
      case 'run': {
        const r = node.run;
        const item = new vscode.TreeItem(`${r.kind} #${r.id}`, vscode.TreeItemCollapsibleState.None);
        item.description = [r.status, duration(r), when(r.queuedAt), r.requestedBy ? `by ${this.store.who(r.requestedBy)}` : null].filter(Boolean).join(' · ');
        const by = r.requestedBy ? `, requested by ${this.store.who(r.requestedBy)}` : '';
        item.tooltip = r.error ? `${r.kind} ${r.status}${by}: ${r.error}` : `${r.kind} ${r.status}${by}`;
        item.iconPath = icon(r.status);
        item.contextValue = `run:${r.status}`;
        item.command = { command: 'odooops.openRunLogs', title: 'Open run logs', arguments: [node] };
        return item;
      }
    }
  }
}
