// The one store the tree is drawn from (as in github/vscode-github-actions): projects → environments →
// recent runs, loaded through the API and kept current by run events (Realtime). Every change says which
// node keys it touched, so the tree refreshes those nodes only. No vscode import: unit-tested alone.
import * as C from '../../contract/index.ts';

export interface StoreApi {
  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T>;
}

/** Node keys: "project:<slug>", "env:<slug>/<name>", "run:<id>". */
export type NodeKey = string;
export const projectKey = (slug: string): NodeKey => `project:${slug}`;
export const envKey = (slug: string, env: string): NodeKey => `env:${slug}/${env}`;

export const RUNS_PER_ENVIRONMENT = 10;

export class Store {
  private readonly api: StoreApi;
  projects: C.Project[] = [];
  private readonly envs = new Map<string, C.Environment[]>();
  private readonly runs = new Map<NodeKey, C.Run[]>();
  private readonly listeners = new Set<(keys: NodeKey[] | null) => void>();
  /** Set when loading failed (not connected, server down): the tree shows it. */
  error: string | null = null;

  constructor(api: StoreApi) {
    this.api = api;
  }

  /** keys null: everything changed. */
  onDidChange(fn: (keys: NodeKey[] | null) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(keys: NodeKey[] | null): void {
    for (const fn of this.listeners) fn(keys);
  }

  async load(): Promise<void> {
    try {
      this.projects = await this.api.get('/api/projects', { parse: (v) => C.Project.array().parse(v) });
      this.envs.clear();
      this.runs.clear();
      for (const p of this.projects) {
        const envs = await this.api.get(`/api/projects/${encodeURIComponent(p.slug)}/environments`, { parse: (v) => C.Environment.array().parse(v) });
        this.envs.set(p.slug, envs);
        const runs = await this.api.get(`/api/runs?project=${encodeURIComponent(p.slug)}&limit=200`, { parse: (v) => C.Run.array().parse(v) });
        for (const r of runs) this.addRun(r);
      }
      this.error = null;
    } catch (err) {
      this.error = (err as Error).message;
    }
    this.emit(null);
  }

  environments(slug: string): C.Environment[] {
    return this.envs.get(slug) ?? [];
  }

  environment(slug: string, name: string): C.Environment | undefined {
    return this.environments(slug).find((e) => e.name === name);
  }

  /** Newest first, at most RUNS_PER_ENVIRONMENT. */
  runsOf(slug: string, env: string): C.Run[] {
    return this.runs.get(envKey(slug, env)) ?? [];
  }

  /** The environment's most recent run (its status is the environment's badge). */
  lastRun(slug: string, env: string): C.Run | undefined {
    return this.runsOf(slug, env)[0];
  }

  runningCount(): number {
    let n = 0;
    for (const list of this.runs.values()) n += list.filter((r) => r.status === 'running' || r.status === 'queued').length;
    return n;
  }

  private addRun(run: C.Run): boolean {
    const key = envKey(run.project, run.environment);
    const list = this.runs.get(key) ?? [];
    const i = list.findIndex((r) => r.id === run.id);
    if (i >= 0) {
      if (JSON.stringify(list[i]) === JSON.stringify(run)) return false;
      list[i] = run;
    } else {
      list.push(run);
      list.sort((a, b) => b.id - a.id);
      list.splice(RUNS_PER_ENVIRONMENT);
      if (!list.some((r) => r.id === run.id)) return false;
    }
    this.runs.set(key, list);
    return true;
  }

  /**
   * A run changed (a Realtime event, or a command's answer): only its environment's node refreshes
   * (the environment shows the last run's status, and lists its runs).
   */
  applyRun(run: C.Run): NodeKey[] {
    if (!this.addRun(run)) return [];
    const keys = [envKey(run.project, run.environment)];
    this.emit(keys);
    return keys;
  }
}
