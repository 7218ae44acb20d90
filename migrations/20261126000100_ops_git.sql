-- Git push → environments, as on Odoo.sh: a project names its addons repository and which branches are
-- production and staging; every other branch gets a development environment. GitHub deliveries are
-- remembered so a redelivery does nothing twice. Environments say how Odoo is deployed on them.

alter table ops.projects
  -- Where workers fetch the addons repository from (a URL git understands, or a path on the worker).
  add column repo_url text constraint projects_repo_url_format check (repo_url ~ '^\S+$' and char_length(repo_url) <= 2000 and repo_url !~ '^-'),
  -- owner/name on GitHub: how webhook deliveries find their project.
  add column github_repo text unique constraint projects_github_repo_format check (github_repo ~ '^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$'),
  add column production_branch text not null default 'main',
  add column staging_branches text[] not null default '{}',
  -- update: a staging push deploys onto the previous build (Odoo.sh's default); fresh: a new neutralized
  -- copy of production first ("New build").
  add column staging_mode text not null default 'update' constraint projects_staging_mode check (staging_mode in ('update', 'fresh')),
  add column production_needs_approval boolean not null default true,
  -- The URL of a branch's development environment; {env} is replaced by the environment name.
  add column dev_url_template text constraint projects_dev_url_template_format check (dev_url_template ~ '^https?://\S+$');

alter table ops.environments
  -- How Odoo runs for this environment: {"kind": "local", "odooBin": "/opt/odoo/odoo-bin", "httpPort": 8069}
  -- or {"kind": "ssh", "host": "deploy@erp.example.com", ...}. Validated by the server (contract DeployTarget).
  add column deploy_target jsonb constraint environments_deploy_target_object check (jsonb_typeof(deploy_target) = 'object'),
  -- The commit running there after the last successful deploy.
  add column deployed_revision text constraint environments_deployed_revision_format check (deployed_revision ~ '^[0-9a-f]{40}$');

create table ops.webhook_deliveries (
  delivery_id text primary key constraint webhook_deliveries_id_format check (delivery_id ~ '^[A-Za-z0-9-]{1,100}$'),
  event text not null,
  project_id uuid references ops.projects (id) on delete set null,
  received_at timestamptz not null default now(),
  outcome jsonb
);
alter table ops.webhook_deliveries enable row level security;

grant update (repo_url, github_repo, production_branch, staging_branches, staging_mode, production_needs_approval, dev_url_template)
  on ops.projects to authenticated;
grant update (deploy_target) on ops.environments to authenticated;
grant select, insert, update on ops.webhook_deliveries to service_role;

-- A deploy to production needs a second person's approval when the project says so (restores always do).
create or replace function ops.runs_require_approval() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_stage ops.stage;
  v_needs boolean;
  v_approval ops.approvals;
begin
  select e.stage, p.production_needs_approval into v_stage, v_needs
  from ops.environments e join ops.projects p on p.id = e.project_id where e.id = new.environment_id;
  if v_stage is distinct from 'production' or not (new.kind = 'restore' or (new.kind = 'deploy' and v_needs)) then
    return new;
  end if;
  if new.approval_id is null then
    raise exception 'a % into production needs an approval from another member', new.kind
      using errcode = '42501', hint = 'Request one (odooops approval request), have a second admin approve it, then queue the run with --approval.';
  end if;
  select * into v_approval from ops.approvals a where a.id = new.approval_id for update;
  if not found or v_approval.environment_id <> new.environment_id or v_approval.kind <> new.kind then
    raise exception 'approval % is not for a % of this environment', new.approval_id, new.kind using errcode = '42501';
  end if;
  if v_approval.status <> 'approved' then
    raise exception 'approval % is %, not approved', new.approval_id, v_approval.status using errcode = '42501';
  end if;
  -- A push asked for this deploy (requested by the service on the pusher's behalf): the approver may queue it.
  if v_approval.requested_by <> '00000000-0000-0000-0000-000000000000'::uuid and v_approval.decided_by is not distinct from new.requested_by then
    raise exception 'approval % was given by the member who queues the %; a second person must approve', new.approval_id, new.kind
      using errcode = '42501';
  end if;
  if v_approval.used_by_run_id is not null then
    raise exception 'approval % was already used by run %', new.approval_id, v_approval.used_by_run_id using errcode = '42501';
  end if;
  if v_approval.params <> new.params then
    raise exception 'approval % was given for other parameters than this %', new.approval_id, new.kind using errcode = '42501';
  end if;
  if v_approval.decided_at < now() - interval '24 hours' then
    raise exception 'approval % expired (approvals are valid for 24 hours)', new.approval_id using errcode = '42501';
  end if;
  update ops.approvals set used_by_run_id = new.id where id = new.approval_id;
  return new;
end
$$;

-- The run a worker holds (running, its lease): what every worker-only function starts from.
create function ops.held_run(p_run bigint, p_worker text) returns ops.runs
language plpgsql stable security definer set search_path = '' as $$
declare
  v_run ops.runs;
begin
  select * into v_run from ops.runs where id = p_run and status = 'running' and lease_owner = p_worker;
  if not found then
    raise exception 'run % is not held by worker %', p_run, p_worker using errcode = '55000';
  end if;
  return v_run;
end
$$;
revoke execute on function ops.held_run(bigint, text) from public, anon, authenticated, service_role;

-- A worker records the revision a deploy left running (only the run holding the environment may).
create function ops.set_deployed_revision(p_run bigint, p_worker text, p_revision text) returns void
language plpgsql security definer set search_path = '' as $$
begin
  update ops.environments set deployed_revision = p_revision where id = (ops.held_run(p_run, p_worker)).environment_id;
end
$$;
revoke execute on function ops.set_deployed_revision(bigint, text, text) from public, anon, authenticated, service_role;
grant execute on function ops.set_deployed_revision(bigint, text, text) to service_role;

-- A development environment whose branch was deleted: its database, filestore and Odoo are gone (the
-- destroy run removed them); the row stays, renamed out of the way, so its runs and logs stay readable.
alter table ops.environments add column archived_at timestamptz;
create function ops.archive_environment(p_run bigint, p_worker text) returns text
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs := ops.held_run(p_run, p_worker);
  v_name text;
begin
  update ops.environments
  set archived_at = now(), branch = null, deployed_revision = null,
      name = left(name, 63 - char_length('.gone-' || p_run::text)) || '.gone-' || p_run::text
  where id = v_run.environment_id and stage = 'development'
  returning name into v_name;
  if v_name is null then
    raise exception 'only development environments are destroyed with their branch' using errcode = '42501';
  end if;
  return v_name;
end
$$;
revoke execute on function ops.archive_environment(bigint, text) from public, anon, authenticated, service_role;
grant execute on function ops.archive_environment(bigint, text) to service_role;
