// The one store the tree is drawn from (as in github/vscode-github-actions): projects → environments →
// recent runs, loaded through the API and kept current by run events (Realtime). Every change says which
// node keys it touched, so the tree refreshes those nodes only. No vscode import: unit-tested alone.
import * as C from '../../contract/index.ts';

export interface StoreApi {
  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T>;
}

/** Node keys: "project:<slug>", "env:<slug>/<name>", "backups:<slug>/<name>", "approvals:<slug>". */
export type NodeKey = string;
export const projectKey = (slug: string): NodeKey => `project:${slug}`;
export const envKey = (slug: string, env: string): NodeKey => `env:${slug}/${env}`;
export const backupsKey = (slug: string, env: string): NodeKey => `backups:${slug}/${env}`;
export const approvalsKey = (slug: string): NodeKey => `approvals:${slug}`;

/** What the newest health run says about an environment. */
export interface Health {
  state: 'healthy' | 'unhealthy' | 'checking';
  at: string;
  run: C.Run;
}
/** Runs that leave a new backup in their environment's list when they succeed. */
const MAKES_BACKUPS = new Set(['backup', 'clone', 'deploy']);

export const RUNS_PER_ENVIRONMENT = 10;

/** A run's log line that says how far it is ("copying: 68 % (4 of 15 tables…)"): what and how much. */
export function progressOf(line: string): { what: string; percent: number } | null {
  const m = /^([a-z][\w .-]{0,40}): (\d{1,3}) ?%/i.exec(line);
  const percent = m ? Number(m[2]) : NaN;
  return m && percent <= 100 ? { what: m[1]!, percent } : null;
}

export class Store {
  private readonly api: StoreApi;
  projects: C.Project[] = [];
  private readonly envs = new Map<string, C.Environment[]>();
  private readonly runs = new Map<NodeKey, C.Run[]>();
  private readonly health = new Map<NodeKey, C.Run>();
  /** Loaded when their node is first expanded; dropped (reloaded on the next look) when stale. */
  private readonly backups = new Map<NodeKey, C.Backup[]>();
  private readonly approvals = new Map<string, C.Approval[]>();
  /** Members' names (the one an admin gave, else their GitHub name or login), to say who did what. */
  private readonly names = new Map<string, string>();
  private readonly members = new Map<string, C.Member[]>();
  private readonly listeners = new Set<(keys: NodeKey[] | null) => void>();
  /** Set when loading failed (not connected, server down): the tree shows it. */
  error: string | null = null;
  /** The signed-in user's id (runs and approvals say "you" for it). */
  me: string | null = null;
  /** Who the server says you are (your GitHub name or login; null for a token signed for a user id). */
  meName: string | null = null;

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

  /** Reads everything at once (in parallel); on failure the last good state stays and `error` says why. */
  async load(): Promise<void> {
    const get = this.api.get.bind(this.api);
    try {
      const [me, projects] = await Promise.all([get('/api/me', C.Me), get('/api/projects', C.Project.array())]);
      const loaded = await Promise.all(projects.map(async (p) => {
        const slug = encodeURIComponent(p.slug);
        const [envs, runs, approvals, members] = await Promise.all([
          get(`/api/projects/${slug}/environments`, C.Environment.array()),
          get(`/api/runs?project=${slug}&limit=200`, C.Run.array()),
          get(`/api/projects/${slug}/approvals`, C.Approval.array()),
          get(`/api/projects/${slug}/members`, C.Member.array()),
        ]);
        return { slug: p.slug, envs, runs, approvals, members };
      }));
      this.me = me.userId;
      this.meName = me.name ?? me.githubLogin ?? null;
      this.projects = projects;
      for (const m of [this.envs, this.runs, this.health, this.backups, this.approvals, this.members]) m.clear();
      for (const { slug, envs, runs, approvals, members } of loaded) {
        this.envs.set(slug, envs);
        for (const r of runs) this.addRun(r);
        this.approvals.set(slug, approvals.reverse());
        this.members.set(slug, members);
        for (const m of members) {
          const name = m.name ?? m.displayName ?? m.githubLogin;
          if (name) this.names.set(m.userId, name);
        }
      }
      this.error = null;
    } catch (err) {
      this.error = (err as Error).message;
    }
    this.emit(null);
  }

  /** Forgets everything (signed out, or another server): the tree is empty until the next load. */
  reset(): void {
    for (const m of [this.envs, this.runs, this.health, this.backups, this.approvals, this.members, this.names]) m.clear();
    this.projects = [];
    this.me = null;
    this.meName = null;
    this.error = null;
    this.emit(null);
  }

  /** The project's members, in the order they joined. */
  membersOf(slug: string): C.Member[] {
    return this.members.get(slug) ?? [];
  }

  environments(slug: string): C.Environment[] {
    return this.envs.get(slug) ?? [];
  }

  /**
   * An environment made from the editor (a branch's development environment): listed where the API
   * lists it (by stage, then name); only its project's node refreshes.
   */
  putEnvironment(env: C.Environment): NodeKey[] {
    const list = this.envs.get(env.project);
    if (!list || list.some((e) => e.id === env.id)) return [];
    list.push(env);
    list.sort((a, b) => C.STAGES.indexOf(a.stage) - C.STAGES.indexOf(b.stage) || a.name.localeCompare(b.name));
    const keys = [projectKey(env.project)];
    this.emit(keys);
    return keys;
  }

  /** An environment as the server now has it (after an edit): replaces the one of that id; only its node refreshes. */
  updateEnvironment(env: C.Environment): NodeKey[] {
    const list = this.envs.get(env.project);
    const i = list?.findIndex((e) => e.id === env.id) ?? -1;
    if (!list || i < 0) return this.putEnvironment(env);
    list[i] = env;
    const keys = [envKey(env.project, env.name)];
    this.emit(keys);
    return keys;
  }

  environment(slug: string, name: string): C.Environment | undefined {
    return this.environments(slug).find((e) => e.name === name);
  }

  /** Newest first, at most RUNS_PER_ENVIRONMENT. */
  runsOf(slug: string, env: string): C.Run[] {
    return this.runs.get(envKey(slug, env)) ?? [];
  }

  run(slug: string, env: string, id: number): C.Run | undefined {
    return this.runsOf(slug, env).find((r) => r.id === id);
  }

  /** The environment's most recent run (its status is the environment's badge). */
  lastRun(slug: string, env: string): C.Run | undefined {
    return this.runsOf(slug, env)[0];
  }

  /** "you", a member's name, "OdooOps" (a push, the schedule), or the start of the user id (a former member). */
  who(userId: string): string {
    if (userId === this.me) return 'you';
    if (userId === C.SERVICE_USER_ID) return 'OdooOps';
    return this.names.get(userId) ?? userId.slice(0, 8);
  }

  healthOf(slug: string, env: string): Health | undefined {
    const run = this.health.get(envKey(slug, env));
    if (!run) return undefined;
    const state = run.status === 'succeeded' ? 'healthy' : run.status === 'failed' ? 'unhealthy' : run.status === 'cancelled' ? undefined : 'checking';
    return state && { state, at: run.finishedAt ?? run.queuedAt, run };
  }

  /**
   * Reads a project's recent runs and approvals again (after a Realtime drop: what changed meanwhile was
   * broadcast to no one); only what differs refreshes.
   */
  async refreshProject(slug: string): Promise<NodeKey[]> {
    const runs = await this.api.get(`/api/runs?project=${encodeURIComponent(slug)}&limit=200`, { parse: (v) => C.Run.array().parse(v) });
    const keys = new Set<NodeKey>();
    for (const r of runs.reverse()) for (const k of this.applyRun(r)) keys.add(k);
    for (const k of await this.reloadApprovals(slug)) keys.add(k);
    return [...keys];
  }

  /** undefined: not loaded yet (call loadBackups). */
  backupsOf(slug: string, env: string): C.Backup[] | undefined {
    return this.backups.get(backupsKey(slug, env));
  }

  async loadBackups(slug: string, env: string): Promise<C.Backup[]> {
    const list = await this.api.get(`/api/projects/${encodeURIComponent(slug)}/environments/${encodeURIComponent(env)}/backups`, { parse: (v) => C.Backup.array().parse(v) });
    this.backups.set(backupsKey(slug, env), list);
    return list;
  }

  /** Approvals still to act on, oldest request first: pending ones, and approved ones no run used yet. */
  openApprovals(slug: string): C.Approval[] {
    return (this.approvals.get(slug) ?? []).filter((a) => a.status === 'pending' || (a.status === 'approved' && a.usedByRunId === null));
  }

  approval(slug: string, id: string): C.Approval | undefined {
    return this.approvals.get(slug)?.find((a) => a.id === id);
  }

  /** Oldest request first (the API lists the newest first). */
  private async fetchApprovals(slug: string): Promise<C.Approval[]> {
    return (await this.api.get(`/api/projects/${encodeURIComponent(slug)}/approvals`, C.Approval.array())).reverse();
  }

  /** An approval was requested or decided (a Realtime event, or a command's answer). */
  async reloadApprovals(slug: string): Promise<NodeKey[]> {
    const before = JSON.stringify(this.openApprovals(slug));
    this.approvals.set(slug, await this.fetchApprovals(slug));
    if (JSON.stringify(this.openApprovals(slug)) === before) return [];
    // The project node shows whether an "Approvals" folder exists at all.
    const keys = [projectKey(slug), approvalsKey(slug)];
    this.emit(keys);
    return keys;
  }

  runningCount(): number {
    let n = 0;
    for (const list of this.runs.values()) n += list.filter((r) => r.status === 'running' || r.status === 'queued').length;
    return n;
  }

  private addRun(run: C.Run): boolean {
    const key = envKey(run.project, run.environment);
    if (run.kind === 'health') {
      const known = this.health.get(key);
      if (!known || known.id <= run.id) this.health.set(key, run);
    }
    const list = this.runs.get(key) ?? [];
    const i = list.findIndex((r) => r.id === run.id);
    if (i >= 0) {
      if (JSON.stringify(list[i]) === JSON.stringify(run)) return false;
      // Every change of a run's state writes to its log: a state with fewer log lines is an older one (a
      // command's answer that arrives after the Realtime feed read a newer state) and must not replace it.
      if (run.lastSeq < list[i]!.lastSeq) return false;
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
    if (run.status === 'succeeded' && MAKES_BACKUPS.has(run.kind) && this.backups.delete(backupsKey(run.project, run.environment))) {
      keys.push(backupsKey(run.project, run.environment));
    }
    this.emit(keys);
    return keys;
  }
}
