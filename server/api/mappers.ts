// Database rows to the contract's API shapes.
import type * as C from '../../contract/index.ts';
import type { Approval, AuditEntry, Environment, InfraEntry, Member, Project, Run } from '../../contract/index.ts';

type Row = Record<string, any>;
const iso = (v: Date | null | undefined) => (v ? v.toISOString() : null);

export const RUN_SELECT = `
  select r.*, p.slug as project_slug, e.name as environment_name
  from ops.runs r join ops.projects p on p.id = r.project_id join ops.environments e on e.id = r.environment_id`;

/**
 * A project with your role in it and the stages your role may operate on (as ops.role_can_operate
 * says), so an editor offers only what the server would allow.
 */
export const PROJECT_SELECT = `
  select p.*, ops.member_role(p.id) as role,
    array(select s::text from unnest(enum_range(null::ops.stage)) s where ops.role_can_operate(ops.member_role(p.id), s)) as operates
  from ops.projects p`;

export const ENV_SELECT = `
  select e.*, p.slug as project_slug from ops.environments e join ops.projects p on p.id = e.project_id`;

export const toProject = (r: Row): Project => ({
  id: r.id, slug: r.slug, name: r.name, role: r.role ?? null, createdAt: iso(r.created_at)!,
  clonePasswordSecret: r.clone_password_secret ?? null,
  backupStore: r.backup_store ?? 'default',
  backupCopy: r.backup_copy ?? null,
  ...(r.operates ? { operates: r.operates } : {}),
});

export const toMember = (r: Row): Member => ({
  userId: r.user_id, role: r.role, displayName: r.display_name ?? null, addedAt: iso(r.added_at)!,
  name: r.display_name ?? r.user_name ?? r.github_login ?? r.user_email ?? null, githubLogin: r.github_login ?? null,
});

export const toInvitation = (r: Row): C.Invitation => ({
  id: r.id, project: r.project_slug, githubLogin: r.github_login ?? null, email: r.email ?? null, role: r.role,
  invitedBy: r.invited_by, createdAt: iso(r.created_at)!, expiresAt: iso(r.expires_at)!,
  acceptedBy: r.accepted_by ?? null, acceptedAt: iso(r.accepted_at),
});

export const toEnvironment = (r: Row): Environment => ({
  id: r.id,
  project: r.project_slug,
  name: r.name,
  stage: r.stage,
  branch: r.branch ?? null,
  url: r.url ?? null,
  database: { server: r.db_server ?? null, name: r.db_name },
  filestore: r.filestore_root ?? null,
  runtime: r.runtime ? { name: r.runtime, httpPort: r.http_port ?? null } : null,
  activeRunId: r.active_run_id ?? null,
});

export const toBackup = (r: Row): C.Backup => ({
  id: r.id,
  environment: r.environment_name,
  kind: r.kind,
  createdAt: r.created_at.toISOString(),
  sizeBytes: Number(r.size_bytes),
  sha256: r.sha256,
  odooVersion: r.manifest?.odoo?.version ?? null,
  database: r.manifest?.database ?? null,
  masked: r.manifest?.clone?.masked === true,
  runId: r.run_id === null ? null : Number(r.run_id),
  stores: r.stores ?? ['default'],
});

export const toRun = (r: Row): Run => ({
  id: r.id,
  project: r.project_slug,
  environment: r.environment_name,
  kind: r.kind,
  status: r.status,
  params: r.params,
  requestedBy: r.requested_by ?? null,
  idempotencyKey: r.idempotency_key ?? null,
  approvalId: r.approval_id ?? null,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  leaseOwner: r.lease_owner ?? null,
  leaseExpiresAt: iso(r.lease_expires_at),
  cancelRequested: r.cancel_requested_at != null,
  queuedAt: iso(r.queued_at)!,
  startedAt: iso(r.started_at),
  finishedAt: iso(r.finished_at),
  error: r.error ?? null,
  result: r.result ?? null,
  lastSeq: r.log_seq,
});

export const toApproval = (r: Row): Approval => ({
  id: r.id,
  environment: r.environment_name,
  kind: r.kind,
  params: r.params,
  reason: r.reason ?? null,
  status: r.status,
  requestedBy: r.requested_by,
  decidedBy: r.decided_by ?? null,
  usedByRunId: r.used_by_run_id ?? null,
});

export const toAudit = (r: Row): AuditEntry => ({
  id: r.id, at: iso(r.at)!, actor: r.actor ?? null, action: r.action, target: r.target ?? null, details: r.details,
});

/** A registry entry; its bindings only for instance admins (members see what their project may use). */
export const toInfra = (r: Row, withProjects: boolean): InfraEntry => ({
  kind: r.kind, name: r.name, description: r.description, details: r.details, ...(withProjects ? { projects: r.projects } : {}),
});

export const toAlert = (r: Row): C.Alert => ({
  id: Number(r.id), project: r.project_slug, environment: r.environment_name ?? null, kind: r.kind, title: r.title, message: r.message,
  runId: r.run_id === null ? null : Number(r.run_id), createdAt: iso(r.created_at)!, deliveries: r.deliveries ?? [], deliveredAt: iso(r.delivered_at),
});
