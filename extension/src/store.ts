// The one store the tree is drawn from (as in github/vscode-github-actions): projects → environments →
// recent runs, loaded through the API and kept current by run events (Realtime). Every change says which
// node keys it touched, so the tree refreshes those nodes only. No vscode import: unit-tested alone.
import * as C from '../../contract/index.ts';
import { paramsText } from './labels.ts';

export interface StoreApi {
  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T>;
}

/** Node keys: "project:<slug>", "env:<slug>/<name>", "backups:<slug>/<name>", "approvals:<slug>". */
export type NodeKey = string;
export const projectKey = (slug: string): NodeKey => `project:${slug}`;
export const envKey = (slug: string, env: string): NodeKey => `env:${slug}/${env}`;
export const backupsKey = (slug: string, env: string): NodeKey => `backups:${slug}/${env}`;
export const approvalsKey = (slug: string): NodeKey => `approvals:${slug}`;

/** Context keys for the palette ("odooops.<key>"): set from your roles in your projects. */
export interface Abilities {
  /** You may run something (backup, restore, deploy, health…) on at least one environment. */
  canRun: boolean;
  /** …on a staging or development environment (a clone's target). */
  canClone: boolean;
  /** …on development environments of a project (a branch's environment). */
  canCreateDev: boolean;
  /** Admin of at least one project (Invite member…, Edit Environment…). */
  isAdmin: boolean;
  /** An open request someone else made that you may approve or reject. */
  canDecide: boolean;
  /** An approved request you may run. */
  canRunApproved: boolean;
}

/** What the newest health run says about an environment. */
export interface Health {
  state: 'healthy' | 'unhealthy' | 'checking';
  at: string;
  run: C.Run;
}
/** Runs that leave a new backup in their environment's list when they succeed. */
const MAKES_BACKUPS = new Set(['backup', 'clone', 'deploy']);
/** Housekeeping the schedule queues: listed with the runs, never an environment's "last run" (its badge). */
const HOUSEKEEPING = new Set(['retention']);

export const RUNS_PER_ENVIRONMENT = 10;
/** How many runs the project-wide first read asks for (the API's limit is 500). */
const FIRST_READ = 200;

const PHASE: Record<C.RunStatus, number> = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };
/**
 * Which of two states of one run is the newer: < 0 when a is older than b, 0 when neither is (the same
 * state, or a lease renewal). The server keeps no version of a run, but its life only moves forward along
 * (log lines, attempts, phase): a claim adds an attempt (queued → running), a finish moves the phase on
 * (running → succeeded/failed/cancelled) and every step back (released, requeued by the sweep, retried,
 * cancelled before it ran, a cancel request) writes a system line to the run's log. So a terminal state
 * is never replaced by a non-terminal one of the same run unless that one says more (a retry).
 */
export function compareRunStates(a: C.Run, b: C.Run): number {
  return a.lastSeq - b.lastSeq || a.attempts - b.attempts || PHASE[a.status] - PHASE[b.status];
}

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
  /** How many runs an environment lists (RUNS_PER_ENVIRONMENT, more after "Show more…"). */
  private readonly shown = new Map<NodeKey, number>();
  /** Environments with older runs than those listed (or maybe: the first read did not reach back to them). */
  private readonly more = new Set<NodeKey>();
  /** Loaded when their node is first expanded; dropped (reloaded on the next look) when stale. */
  private readonly backups = new Map<NodeKey, C.Backup[]>();
  private readonly approvals = new Map<string, C.Approval[]>();
  /** Members' names (the one an admin gave, else their GitHub name or login), to say who did what. */
  private readonly names = new Map<string, string>();
  private readonly members = new Map<string, C.Member[]>();
  /** Ids whose name was looked for once (learnName), and the read of the members under way. */
  private readonly askedNames = new Set<string>();
  private namesRead: Promise<void> | null = null;
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

  /** Called with abilities() now and whenever they change (a load, a role, an approval requested or used). */
  onDidChangeAbilities(fn: (a: Abilities) => void): () => void {
    let last = '';
    const check = () => {
      const now = this.abilities();
      if (JSON.stringify(now) === last) return;
      last = JSON.stringify(now);
      fn(now);
    };
    check();
    return this.onDidChange(check);
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
          get(`/api/runs?project=${slug}&limit=${FIRST_READ}`, C.Run.array()),
          get(`/api/projects/${slug}/approvals`, C.Approval.array()),
          get(`/api/projects/${slug}/members`, C.Member.array()),
        ]);
        return { slug: p.slug, envs, runs, approvals, members };
      }));
      this.me = me.userId;
      this.meName = me.name ?? me.githubLogin ?? null;
      this.projects = projects;
      for (const m of [this.envs, this.runs, this.health, this.backups, this.approvals, this.members, this.shown, this.more]) m.clear();
      for (const { slug, envs, runs, approvals, members } of loaded) {
        this.envs.set(slug, envs);
        for (const r of runs) this.addRun(r);
        // A full first read may have stopped before an environment's older runs: "Show more…" finds out.
        if (runs.length >= FIRST_READ) for (const e of envs) this.more.add(envKey(slug, e.name));
        this.approvals.set(slug, approvals.reverse());
        this.setMembers(slug, members);
      }
      this.error = null;
    } catch (err) {
      this.error = (err as Error).message;
    }
    this.emit(null);
  }

  /** Forgets everything (signed out, or another server): the tree is empty until the next load. */
  reset(): void {
    this.askedNames.clear();
    for (const m of [this.envs, this.runs, this.health, this.backups, this.approvals, this.members, this.names, this.shown, this.more]) m.clear();
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

  /** Newest first, at most RUNS_PER_ENVIRONMENT (more once "Show more…" was asked for). */
  runsOf(slug: string, env: string): C.Run[] {
    return this.runs.get(envKey(slug, env)) ?? [];
  }

  /** Whether the environment has (or may have) older runs than those listed. */
  hasMoreRuns(slug: string, env: string): boolean {
    return this.more.has(envKey(slug, env));
  }

  /** The next page of an environment's older runs ("Show more…"); only its node refreshes. */
  async loadMoreRuns(slug: string, env: string): Promise<NodeKey[]> {
    const key = envKey(slug, env);
    const oldest = this.runsOf(slug, env).at(-1)?.id;
    // One more than a page: whether there is yet another page.
    const page = await this.api.get(`/api/runs?project=${encodeURIComponent(slug)}&environment=${encodeURIComponent(env)}&limit=${RUNS_PER_ENVIRONMENT + 1}${oldest ? `&before=${oldest}` : ''}`,
      { parse: (v) => C.Run.array().parse(v) });
    this.shown.set(key, this.runsOf(slug, env).length + Math.min(page.length, RUNS_PER_ENVIRONMENT));
    this.more.delete(key);
    for (const r of page.slice(0, RUNS_PER_ENVIRONMENT)) this.addRun(r);
    if (page.length > RUNS_PER_ENVIRONMENT) this.more.add(key);
    this.emit([key]);
    return [key];
  }

  run(slug: string, env: string, id: number): C.Run | undefined {
    return this.runsOf(slug, env).find((r) => r.id === id);
  }

  /** The environment's most recent run that is not housekeeping (its status is the environment's badge). */
  lastRun(slug: string, env: string): C.Run | undefined {
    return this.runsOf(slug, env).find((r) => !HOUSEKEEPING.has(r.kind));
  }

  /** "you", a member's name, "OdooOps" (a push, the schedule), or the start of the user id (a former member). */
  who(userId: string): string {
    if (userId === this.me) return 'you';
    if (userId === C.SERVICE_USER_ID) return 'OdooOps';
    const name = this.names.get(userId);
    if (name) return name;
    this.learnName(userId);
    return userId.slice(0, 8);
  }

  private setMembers(slug: string, members: C.Member[]): void {
    this.members.set(slug, members);
    for (const m of members) {
      const name = m.name ?? m.displayName ?? m.githubLogin;
      if (name) this.names.set(m.userId, name);
    }
  }

  /**
   * Someone the store has no name for: most often a member who joined after it loaded (their first run
   * or request arrives through Realtime). The members are read again, once per such id (a former
   * member stays an id), and the projects whose names changed redraw.
   */
  private learnName(userId: string): void {
    if (this.askedNames.has(userId)) return;
    this.askedNames.add(userId);
    this.namesRead ??= new Promise<void>((resolve) => setTimeout(resolve, 0))
      .then(() => this.reloadMembers())
      .finally(() => { this.namesRead = null; });
  }

  private async reloadMembers(): Promise<void> {
    const changed: NodeKey[] = [];
    for (const p of this.projects) {
      const members = await this.api.get(`/api/projects/${encodeURIComponent(p.slug)}/members`, { parse: (v) => C.Member.array().parse(v) }).catch(() => null);
      if (!members) continue;
      const before = this.names.size;
      const known = JSON.stringify(this.membersOf(p.slug));
      this.setMembers(p.slug, members);
      if (this.names.size !== before || JSON.stringify(members) !== known) changed.push(projectKey(p.slug));
    }
    if (changed.length) this.emit(changed);
  }

  /** Your role in the project (null: not a member, or not loaded). */
  roleIn(slug: string): C.Role | null {
    return this.projects.find((p) => p.slug === slug)?.role ?? null;
  }

  /**
   * Whether your role lets you run things on the project's environments of that stage (the server says
   * which stages; a server too old to say is asked anyway, and decides).
   */
  mayOperate(slug: string, stage: C.Stage): boolean {
    const p = this.projects.find((x) => x.slug === slug);
    return !!p && (p.operates ? p.operates.includes(stage) : p.role !== null);
  }

  /** Approve…/Reject…: pending, someone else's request, and your role may operate where it would run. */
  mayDecide(slug: string, a: C.Approval): boolean {
    const stage = this.environment(slug, a.environment)?.stage;
    return a.status === 'pending' && a.requestedBy !== this.me && !!stage && this.mayOperate(slug, stage);
  }

  /**
   * Run approved…: approved, not used yet, your role may operate there, and a second person approved it
   * (the one who approved may not run it, except a push's request, which OdooOps itself made).
   */
  mayRunApproved(slug: string, a: C.Approval): boolean {
    const stage = this.environment(slug, a.environment)?.stage;
    return a.status === 'approved' && a.usedByRunId === null && !!stage && this.mayOperate(slug, stage)
      && (a.decidedBy !== this.me || a.requestedBy === C.SERVICE_USER_ID);
  }

  /** What your roles let you do somewhere (the palette offers a command only when it can succeed somewhere). */
  abilities(): Abilities {
    const envs = this.projects.flatMap((p) => this.environments(p.slug).map((e) => ({ slug: p.slug, stage: e.stage })));
    const open = this.projects.flatMap((p) => this.openApprovals(p.slug).map((a) => ({ slug: p.slug, a })));
    return {
      canRun: envs.some((e) => this.mayOperate(e.slug, e.stage)),
      canClone: envs.some((e) => e.stage !== 'production' && this.mayOperate(e.slug, e.stage)),
      canCreateDev: this.projects.some((p) => this.mayOperate(p.slug, 'development')),
      isAdmin: this.projects.some((p) => p.role === 'admin'),
      canDecide: open.some(({ slug, a }) => this.mayDecide(slug, a)),
      canRunApproved: open.some(({ slug, a }) => this.mayRunApproved(slug, a)),
    };
  }

  /**
   * What an approval would do, in words: a restore names its backup (kind, time, run) rather than its id;
   * a deploy its commit or branch. The environment's backups are read if they were not yet.
   */
  async describeApproval(slug: string, a: C.Approval): Promise<string> {
    const id = typeof a.params.backup === 'string' ? a.params.backup : undefined;
    let backup: C.Backup | undefined;
    if (id) {
      backup = this.backupsOf(slug, a.environment)?.find((b) => b.id === id);
      if (!backup) backup = (await this.loadBackups(slug, a.environment).catch(() => [] as C.Backup[])).find((b) => b.id === id);
    }
    return paramsText(a.kind, a.params, backup);
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
    const runs = await this.api.get(`/api/runs?project=${encodeURIComponent(slug)}&limit=${FIRST_READ}`, { parse: (v) => C.Run.array().parse(v) });
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

  /**
   * A run that carries an approval used it up (the database marks it used when the run is queued, with no
   * message of its own): the approval stops being offered as "approved: run it".
   */
  private useApproval(run: C.Run): NodeKey[] {
    const list = run.approvalId ? this.approvals.get(run.project) : undefined;
    const i = list?.findIndex((a) => a.id === run.approvalId) ?? -1;
    if (!list || i < 0 || list[i]!.usedByRunId !== null) return [];
    list[i] = { ...list[i]!, usedByRunId: run.id };
    return [projectKey(run.project), approvalsKey(run.project)];
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
      // Snapshots of a run arrive in any order (a command's answer after the Realtime feed read a newer
      // state, a re-read of the project racing the feed): an older one must not replace a newer one.
      if (compareRunStates(run, list[i]!) < 0) return false;
      list[i] = run;
    } else {
      const shown = this.shown.get(key) ?? RUNS_PER_ENVIRONMENT;
      if (list.length >= shown && run.id < list[list.length - 1]!.id) {
        this.more.add(key);
        return false;
      }
      list.push(run);
      list.sort((a, b) => b.id - a.id);
      if (list.length > shown) {
        list.splice(shown);
        this.more.add(key);
      }
    }
    this.runs.set(key, list);
    return true;
  }

  /**
   * A run changed (a Realtime event, or a command's answer): only its environment's node refreshes
   * (the environment shows the last run's status, and lists its runs).
   */
  applyRun(run: C.Run): NodeKey[] {
    const used = this.useApproval(run);
    if (!this.addRun(run)) {
      if (used.length) this.emit(used);
      return used;
    }
    const keys = [envKey(run.project, run.environment), ...used];
    if (run.status === 'succeeded' && MAKES_BACKUPS.has(run.kind) && this.backups.delete(backupsKey(run.project, run.environment))) {
      keys.push(backupsKey(run.project, run.environment));
    }
    this.emit(keys);
    return keys;
  }
}
