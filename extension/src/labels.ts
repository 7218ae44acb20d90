// How the tree says things: times (relative, with the absolute UTC time for tooltips), durations,
// backups and approvals' parameters in words, and the contextValues its menus are chosen by. No vscode
// import: unit-tested alone, with package.json's `when` clauses.
import type * as C from '../../contract/index.ts';

/** "2026-12-01 10:04:05 UTC": the absolute time, for tooltips. */
export const utcTime = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')} UTC`;

/** "just now", "45 s ago", "3 min ago", "2 h ago", "yesterday", "4 days ago", then the date. */
export function relativeTime(iso: string, now = Date.now()): string {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h ago`;
  const days = Math.floor(h / 24);
  if (days === 1) return 'yesterday';
  if (days < 30) return `${days} days ago`;
  return iso.slice(0, 10);
}

/** How long a run took, or has been running so far. */
export function duration(run: Pick<C.Run, 'startedAt' | 'finishedAt'>, now = Date.now()): string {
  if (!run.startedAt) return '';
  const s = Math.max(0, Math.round(((run.finishedAt ? Date.parse(run.finishedAt) : now) - Date.parse(run.startedAt)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`;
}

/**
 * Which run nodes a tick of the tree's clock redraws: the running ones every tick (their elapsed time),
 * and every `agoEvery` ticks all of them (their "… ago").
 */
export function tickTargets<T extends { run: Pick<C.Run, 'status'> }>(inSight: T[], tick: number, agoEvery: number): T[] {
  return tick % agoEvery === 0 ? inSight : inSight.filter((n) => n.run.status === 'running');
}

/** How a backup is named in the tree and in pickers: its kind and when it was made (UTC). */
export const backupLabel = (b: C.Backup) => `${b.kind} ${b.createdAt.slice(0, 16).replace('T', ' ')}`;

/**
 * A run's or approval's parameters in words: a restore's backup by its label (kind, UTC time, the run that
 * made it) rather than its id, a deploy's commit or branch; anything else as key: value.
 */
export function paramsText(kind: string, params: Record<string, unknown>, backup?: C.Backup): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (k === 'backup' && typeof v === 'string') {
      parts.push(backup
        ? `the ${backup.kind} backup of ${backup.environment} made ${utcTime(backup.createdAt)}${backup.runId ? ` by run #${backup.runId}` : ''}${backup.masked ? ' (masked)' : ''}`
        : `backup ${v} (no longer listed: deleted, or not readable)`);
    } else if (k === 'revision' && typeof v === 'string') parts.push(`commit ${v.slice(0, 12)}`);
    else if (k === 'branch' && typeof v === 'string') parts.push(`the newest commit of branch ${v}`);
    else if (kind === 'backup' && k === 'kind' && typeof v === 'string') parts.push(`a ${v} backup`);
    else parts.push(`${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return parts.join(', ') || 'no parameters';
}

// contextValues --------------------------------------------------------------------------------------
// The menus (package.json's view/item/context `when` clauses) are chosen by these. The suffixes say what
// you may do on the node, as the server would decide it: ":admin" (admin of the project: everything,
// Edit Environment… too), ":operate" (your role may run things on it), none (you may look only).
// Approvals: ":mine" (your request: another member decides), ":decide" (you may approve or reject it),
// ":run" (approved, and you may run it).

export function environmentContext(stage: C.Stage, role: C.Role | null, mayOperate: boolean): string {
  return `environment:${stage}${role === 'admin' ? ':admin' : mayOperate ? ':operate' : ''}`;
}

/** A project: ":admin" (Invite member…, and a branch's environment), ":develop" (your role may make a branch's environment). */
export const projectContext = (role: C.Role | null, mayDevelop: boolean) => (role === 'admin' ? 'project:admin' : mayDevelop ? 'project:develop' : 'project');

/** A run: Cancel / Re-run / Retry only where your role may operate. */
export const runContext = (status: C.RunStatus, mayOperate: boolean) => `run:${status}${mayOperate ? ':operate' : ''}`;

/** A backup: Restore / Download only where your role may operate (a backup holds all of the environment's data). */
export const backupContext = (kind: string, mayOperate: boolean) => `backup:${kind}${mayOperate ? ':operate' : ''}`;

export function approvalContext(a: C.Approval, me: string | null, may: { decide: boolean; run: boolean }): string {
  if (a.status === 'pending') return `approval:pending${a.requestedBy === me ? ':mine' : may.decide ? ':decide' : ''}`;
  return `approval:${a.status}${may.run ? ':run' : ''}`;
}

// Tree item ids: the same node keeps its id across reloads and refreshes, so VS Code keeps it expanded.
export const itemId = {
  project: (slug: string) => `project:${slug}`,
  approvals: (slug: string) => `approvals:${slug}`,
  approval: (slug: string, id: string) => `approval:${slug}/${id}`,
  environment: (slug: string, env: string) => `env:${slug}/${env}`,
  backups: (slug: string, env: string) => `backups:${slug}/${env}`,
  backup: (slug: string, id: string) => `backup:${slug}/${id}`,
  run: (slug: string, id: number) => `run:${slug}/${id}`,
  more: (slug: string, env: string) => `more:${slug}/${env}`,
};
