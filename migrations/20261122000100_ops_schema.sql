-- The control plane's tables. Policies, grants and the run life cycle live in the following files.
create schema if not exists ops;

create type ops.stage as enum ('production', 'staging', 'development');
-- Odoo.sh's three roles, plus a read-only viewer. Declared from least to most powerful.
create type ops.member_role as enum ('viewer', 'developer', 'tester', 'admin');
create type ops.run_status as enum ('queued', 'running', 'succeeded', 'failed', 'cancelled');
create type ops.approval_status as enum ('pending', 'approved', 'rejected');

create table ops.projects (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique
    constraint projects_slug_format check (slug ~ '^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$'),
  name text not null constraint projects_name_length check (char_length(name) between 1 and 200),
  created_by uuid default auth.uid(),
  created_at timestamptz not null default now()
);

create table ops.project_members (
  project_id uuid not null references ops.projects (id) on delete cascade,
  user_id uuid not null,
  role ops.member_role not null,
  display_name text constraint project_members_display_length check (char_length(display_name) <= 200),
  added_by uuid default auth.uid(),
  added_at timestamptz not null default now(),
  primary key (project_id, user_id)
);
create index project_members_user on ops.project_members (user_id);

create table ops.environments (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references ops.projects (id) on delete cascade,
  name text not null constraint environments_name_format check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  stage ops.stage not null,
  -- git ref rules that matter here: no "..", no "//", no leading "-" or "/", no trailing "/", "." or ".lock".
  branch text constraint environments_branch_format check (
    branch ~ '^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$' and branch !~ '\.\.' and branch !~ '//'
    and branch !~ '(/|\.|\.lock)$' and branch !~ '/\.'),
  url text constraint environments_url_format check (url ~ '^https?://\S+$' and char_length(url) <= 2000),
  -- The Odoo database this environment manages. The password is never stored: db_password_ref names
  -- where the worker finds it: an ODOOOPS_DB_* environment variable, or a file in one of the worker's
  -- secrets directories. Narrow on purpose, so a reference cannot name the worker's other secrets.
  db_host text constraint environments_db_host_format check (db_host ~ '^[A-Za-z0-9._:/-]{1,255}$'),
  db_port integer constraint environments_db_port_range check (db_port between 1 and 65535),
  db_name text not null constraint environments_db_name_format check (db_name ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$'),
  db_user text constraint environments_db_user_format check (db_user ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$'),
  db_password_ref text constraint environments_db_password_ref_format
    check (db_password_ref ~ '^(env:ODOOOPS_DB_[A-Z0-9_]{1,100}|file:/[^\n]+)$' and char_length(db_password_ref) <= 1000),
  filestore_path text constraint environments_filestore_path_format check (filestore_path ~ '^/[^\n]*$' and char_length(filestore_path) <= 4000),
  -- The run holding this environment. Claims test and set it under a row lock, which is what makes
  -- "at most one running run per environment" hold between concurrent workers.
  active_run_id bigint,
  created_by uuid default auth.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (project_id, name)
);
create unique index environments_one_production on ops.environments (project_id) where stage = 'production';

create table ops.approvals (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references ops.projects (id) on delete cascade,
  environment_id uuid not null references ops.environments (id) on delete cascade,
  kind text not null constraint approvals_kind_format check (kind ~ '^[a-z][a-z0-9_.-]{0,39}$'),
  params jsonb not null default '{}'::jsonb
    constraint approvals_params_object check (jsonb_typeof(params) = 'object' and octet_length(params::text) <= 16384),
  reason text constraint approvals_reason_length check (char_length(reason) <= 2000),
  status ops.approval_status not null default 'pending',
  requested_by uuid not null,
  requested_at timestamptz not null default now(),
  decided_by uuid,
  decided_at timestamptz,
  -- Set when a run uses the approval: one approval, one run.
  used_by_run_id bigint unique
);
create index approvals_environment on ops.approvals (environment_id, requested_at desc);

-- The run kinds some worker can execute, registered by workers when they start. Queuing a kind that no
-- worker knows is refused, instead of leaving a run queued forever.
create table ops.run_kinds (
  kind text primary key constraint run_kinds_kind_format check (kind ~ '^[a-z][a-z0-9_.-]{0,39}$'),
  description text not null default '',
  registered_at timestamptz not null default now()
);

create table ops.runs (
  id bigint generated always as identity primary key,
  project_id uuid not null references ops.projects (id) on delete cascade,
  environment_id uuid not null references ops.environments (id) on delete cascade,
  kind text not null constraint runs_kind_format check (kind ~ '^[a-z][a-z0-9_.-]{0,39}$'),
  status ops.run_status not null default 'queued',
  params jsonb not null default '{}'::jsonb
    constraint runs_params_object check (jsonb_typeof(params) = 'object' and octet_length(params::text) <= 16384),
  requested_by uuid,
  idempotency_key text constraint runs_idempotency_key_format check (idempotency_key ~ '^[A-Za-z0-9._:-]{1,200}$'),
  approval_id uuid references ops.approvals (id),
  attempts integer not null default 0,
  max_attempts integer not null default 3 constraint runs_max_attempts_range check (max_attempts between 1 and 20),
  lease_owner text,
  lease_expires_at timestamptz,
  heartbeat_at timestamptz,
  cancel_requested_at timestamptz,
  log_seq bigint not null default 0,
  queued_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  error text,
  result jsonb,
  unique (project_id, idempotency_key),
  constraint runs_lease_matches_status check ((status = 'running') = (lease_owner is not null))
);
-- The queue: only queued rows, in claim order.
create index runs_queued on ops.runs (id) where status = 'queued';
create index runs_expiring on ops.runs (lease_expires_at) where status = 'running';
create index runs_environment on ops.runs (environment_id, id desc);
create index runs_project on ops.runs (project_id, id desc);
-- The last line of defence behind the claim's environment lock.
create unique index runs_one_running_per_environment on ops.runs (environment_id) where status = 'running';

alter table ops.environments
  add constraint environments_active_run_fk foreign key (active_run_id) references ops.runs (id) on delete set null;
alter table ops.approvals
  -- Deferred: the run-insert trigger marks the approval used before the run row exists.
  add constraint approvals_used_by_run_fk foreign key (used_by_run_id) references ops.runs (id) on delete set null
    deferrable initially deferred;

create table ops.run_logs (
  run_id bigint not null references ops.runs (id) on delete cascade,
  seq bigint not null,
  ts timestamptz not null default now(),
  stream text not null constraint run_logs_stream check (stream in ('stdout', 'stderr', 'system')),
  line text not null,
  primary key (run_id, seq)
);

create table ops.backups (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references ops.projects (id) on delete cascade,
  environment_id uuid not null references ops.environments (id) on delete cascade,
  run_id bigint references ops.runs (id) on delete set null,
  kind text not null constraint backups_kind check (kind in ('daily', 'manual', 'pre-deploy', 'clone')),
  location text not null,
  size_bytes bigint not null default 0,
  sha256 text constraint backups_sha256_format check (sha256 ~ '^[0-9a-f]{64}$'),
  manifest jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index backups_environment on ops.backups (environment_id, created_at desc);

-- Append-only: no foreign key to projects, so history outlives what it describes.
create table ops.audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor uuid,
  actor_role text,
  project_id uuid,
  action text not null,
  target text,
  details jsonb not null default '{}'::jsonb
);
create index audit_log_project on ops.audit_log (project_id, id desc);
