// The OdooOps tree: projects → environments (stage icon, branch, URL, last run) → recent runs. Drawn
// from the Store; a change refreshes only the nodes it names. contextValue drives the menus:
// "environment:<stage>" and "run:<status>".
import * as vscode from 'vscode';
import type * as C from '../../contract/index.ts';
import { envKey, projectKey, type NodeKey, type Store } from './store.ts';

export type Node =
  | { type: 'project'; project: C.Project }
  | { type: 'environment'; project: string; env: C.Environment }
  | { type: 'run'; run: C.Run };

const STAGE_ICON: Record<string, string> = { production: 'server-environment', staging: 'beaker', development: 'git-branch' };
const STATUS_ICON: Record<string, [string, string?]> = {
  queued: ['clock'], running: ['sync~spin', 'charts.yellow'], succeeded: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'], cancelled: ['circle-slash'],
};
const icon = (status: string) => {
  const [id, color] = STATUS_ICON[status] ?? ['circle-outline'];
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
};

export function duration(run: C.Run, now = Date.now()): string {
  if (!run.startedAt) return '';
  const s = Math.round(((run.finishedAt ? Date.parse(run.finishedAt) : now) - Date.parse(run.startedAt)) / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
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
      this.changed.fire(nodes.length ? nodes : undefined);
    });
  }

  getChildren(node?: Node): Node[] {
    if (!node) {
      const list: Node[] = this.store.projects.map((project) => ({ type: 'project', project }));
      for (const n of list) if (n.type === 'project') this.nodes.set(projectKey(n.project.slug), n);
      return list;
    }
    if (node.type === 'project') {
      return this.store.environments(node.project.slug).map((env) => {
        const n: Node = { type: 'environment', project: node.project.slug, env };
        this.nodes.set(envKey(node.project.slug, env.name), n);
        return n;
      });
    }
    if (node.type === 'environment') return this.store.runsOf(node.project, node.env.name).map((run) => ({ type: 'run', run }));
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.type === 'project') {
      const item = new vscode.TreeItem(node.project.name, vscode.TreeItemCollapsibleState.Expanded);
      item.description = node.project.role ?? '';
      item.contextValue = 'project';
      item.iconPath = new vscode.ThemeIcon('project');
      return item;
    }
    if (node.type === 'environment') {
      // Read the environment again: the node may be older than the store's last change.
      const env = this.store.environment(node.project, node.env.name) ?? node.env;
      const last = this.store.lastRun(node.project, env.name);
      const item = new vscode.TreeItem(env.name, vscode.TreeItemCollapsibleState.Collapsed);
      item.description = [env.branch, last ? `${last.kind} ${last.status}` : null].filter(Boolean).join(' · ');
      item.tooltip = new vscode.MarkdownString(`**${env.name}** (${env.stage})\n\n${env.url ? `${env.url}\n\n` : ''}database \`${env.database.name}\``);
      item.iconPath = last && last.status !== 'succeeded' ? icon(last.status) : new vscode.ThemeIcon(STAGE_ICON[env.stage] ?? 'circle-outline');
      item.contextValue = `environment:${env.stage}`;
      return item;
    }
    const r = node.run;
    const item = new vscode.TreeItem(`${r.kind} #${r.id}`, vscode.TreeItemCollapsibleState.None);
    item.description = [r.status, duration(r), r.queuedAt.slice(0, 16).replace('T', ' ')].filter(Boolean).join(' · ');
    item.tooltip = r.error ?? `${r.kind} ${r.status}`;
    item.iconPath = icon(r.status);
    item.contextValue = `run:${r.status}`;
    item.command = { command: 'odooops.openRunLogs', title: 'Open run logs', arguments: [node] };
    return item;
  }
}
