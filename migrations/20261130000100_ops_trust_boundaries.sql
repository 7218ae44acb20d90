-- Trust boundaries (SECURITY.md). The worker runs with the operator's secrets and privileges, so what it
-- touches is decided by the operator, never by an API user:
--  * creating projects is an instance-level right (ops.instance_admins);
--  * infrastructure (database servers and their passwords, filestore roots, Odoo runtimes, repositories)
--    is declared in the operator's registry file; environments and projects only name its entries. The
--    control plane keeps a copy of the names and which projects may use them (ops.infrastructure,
--    written by the server from the file), so these rules hold here for every writer; the worker checks
--    them again against its own file.
-- Environments lose their free-form hosts, users, password references, paths and deploy targets.

-- Instance admins ----------------------------------------------------------------------------------
create table ops.instance_admins (
  user_id uuid primary key,
  added_by uuid default auth.uid(),
  added_at timestamptz not null default now()
);
alter table ops.instance_admins enable row level security;

create function ops.is_instance_admin() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from ops.instance_admins a where a.user_id = auth.uid())
$$;

create policy instance_admins_select on ops.instance_admins for select to authenticated using (ops.is_instance_admin());
create policy instance_admins_insert on ops.instance_admins for insert to authenticated with check (ops.is_instance_admin());
create policy instance_admins_delete on ops.instance_admins for delete to authenticated using (ops.is_instance_admin());

-- An instance always keeps an admin (the server re-adds its operator's identity at every start anyway).
create function ops.instance_admins_keep_one() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if not exists (select 1 from ops.instance_admins a where a.user_id <> old.user_id) then
    raise exception 'an instance needs at least one instance admin' using errcode = '23514',
      hint = 'Grant the right to someone else first (odooops admin grant USER_ID).';
  end if;
  return old;
end
$$;
create trigger instance_admins_keep_one before delete on ops.instance_admins
  for each row execute function ops.instance_admins_keep_one();
create trigger instance_admins_audit after insert or delete on ops.instance_admins
  for each row execute function ops.audit_row_change();

-- Instance-level entries (no project) are for instance admins.
create policy audit_log_select_instance on ops.audit_log for select to authenticated
  using (project_id is null and ops.is_instance_admin());

drop policy projects_insert on ops.projects;
create policy projects_insert on ops.projects for insert to authenticated
  with check (created_by = (select auth.uid()) and (select ops.is_instance_admin()));

-- The registry's copy ------------------------------------------------------------------------------
create table ops.infrastructure (
  kind text not null constraint infrastructure_kind check (kind in ('database_server', 'filestore_root', 'runtime', 'repository')),
  name text not null constraint infrastructure_name_format check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  description text not null default '' constraint infrastructure_description_length check (char_length(description) <= 500),
  -- What the API shows and checks: a runtime's kind and port range, a repository's URL regex, a
  -- database server's allowed database names (regexes). Never a password or its reference.
  details jsonb not null default '{}'::jsonb constraint infrastructure_details_object check (jsonb_typeof(details) = 'object'),
  -- Project slugs, or '*' for every project.
  projects text[] not null default '{}',
  primary key (kind, name)
);
alter table ops.infrastructure enable row level security;

create table ops.infrastructure_source (
  id boolean primary key default true constraint infrastructure_source_one check (id),
  sha256 text not null,
  published_by text not null,
  published_at timestamptz not null default now()
);
alter table ops.infrastructure_source enable row level security;

-- Whether an entry of the registry is bound to a project.
create function ops.infra_bound(p_project uuid, p_kind text, p_name text) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from ops.infrastructure i join ops.projects p on p.id = p_project
    where i.kind = p_kind and i.name = p_name and (p.slug = any (i.projects) or '*' = any (i.projects)))
$$;

-- Members see what is bound to their projects; instance admins see everything.
create policy infrastructure_select on ops.infrastructure for select to authenticated
  using (ops.is_instance_admin() or exists (
    select 1 from ops.project_members m join ops.projects p on p.id = m.project_id
    where m.user_id = (select auth.uid()) and (p.slug = any (infrastructure.projects) or '*' = any (infrastructure.projects))));

-- Environments name their infrastructure ----------------------------------------------------------
drop trigger environments_audit on ops.environments;
drop trigger environments_touch on ops.environments;
drop trigger environments_guard_secrets on ops.environments;
drop function ops.environments_guard_secrets();

alter table ops.environments
  add column db_server text constraint environments_db_server_format check (db_server ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  add column filestore_root text constraint environments_filestore_root_format check (filestore_root ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  add column runtime text constraint environments_runtime_format check (runtime ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  add column http_port integer constraint environments_http_port_range check (http_port between 1 and 65535);

-- The demo's environments used the embedded cluster through a password file the demo wrote: they now
-- name the server's built-in demo entries (which also follow the cluster's port across restarts).
update ops.environments e set db_server = 'demo-postgres', filestore_root = 'demo-filestore'
from ops.projects p
where p.id = e.project_id and p.slug = 'demo' and e.db_password_ref like 'file:%/demo-postgres-password';

-- Every other environment's settings are kept for the operator, who moves them into the registry: the
-- server writes them out as a suggested registry file (server/infra/upgrade.ts). The environments name
-- those suggested entries already (<project>-<environment>), so adopting the file is all it takes.
-- Only the server reads this table (no grants): it holds password references and paths.
create table ops.environment_settings_before_registry (
  environment_id uuid primary key references ops.environments (id) on delete cascade,
  project_slug text not null,
  environment text not null,
  db_name text not null,
  db_host text,
  db_port integer,
  db_user text,
  db_password_ref text,
  filestore_path text,
  deploy_target jsonb,
  saved_at timestamptz not null default now()
);
alter table ops.environment_settings_before_registry enable row level security;
insert into ops.environment_settings_before_registry
  (environment_id, project_slug, environment, db_name, db_host, db_port, db_user, db_password_ref, filestore_path, deploy_target)
select e.id, p.slug, e.name, e.db_name, e.db_host, e.db_port, e.db_user, e.db_password_ref, e.filestore_path, e.deploy_target
from ops.environments e join ops.projects p on p.id = e.project_id
where e.db_server is null and e.archived_at is null;
update ops.environments e
set db_server = s.name,
    filestore_root = case when e.filestore_path is not null then s.name || '-files' end,
    runtime = case when e.deploy_target is not null then s.name || '-odoo' end,
    http_port = case when e.deploy_target ->> 'kind' = 'local' then (e.deploy_target ->> 'httpPort')::integer end
from (select e2.id, left(p.slug, 28) || '-' || left(regexp_replace(e2.name, '[^a-z0-9-]', '-', 'g'), 28) as name
      from ops.environments e2 join ops.projects p on p.id = e2.project_id) s
where s.id = e.id and e.db_server is null and e.archived_at is null;

alter table ops.environments
  drop column db_host, drop column db_port, drop column db_user, drop column db_password_ref,
  drop column filestore_path, drop column deploy_target;

-- Not the server's own databases, nor the side databases restores and clones make (…_odooops_new_42).
-- NOT VALID: rows from before are left as they are; new and changed rows are checked.
alter table ops.environments add constraint environments_db_name_usable
  check (db_name !~* '^(postgres|template[01])$' and db_name !~ '_odooops_') not valid;

-- One live environment per database, filestore and port: two projects (or two environments) on one
-- server never manage the same database, so one cannot back up, restore or drop the other's.
create unique index environments_one_database on ops.environments (db_server, db_name)
  where archived_at is null and db_server is not null;
create unique index environments_one_filestore on ops.environments (filestore_root, db_name)
  where archived_at is null and filestore_root is not null;
create unique index environments_one_port on ops.environments (runtime, http_port)
  where archived_at is null and http_port is not null;

-- Names must be bound to the environment's project, for every writer (the service role included: a
-- webhook's development environment copies production's names); a database name must be one the server
-- allows; the HTTP port must be in the local runtime's range. Only project admins choose or change an
-- environment's database, filestore, runtime or port (developers get theirs derived, from a branch).
create function ops.environments_guard_infra() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_changed boolean := tg_op = 'INSERT' and (new.db_server is not null or new.filestore_root is not null
                                             or new.runtime is not null or new.http_port is not null)
    or tg_op = 'UPDATE' and (new.db_server is distinct from old.db_server or new.db_name is distinct from old.db_name
                             or new.filestore_root is distinct from old.filestore_root or new.runtime is distinct from old.runtime
                             or new.http_port is distinct from old.http_port);
  v_runtime ops.infrastructure;
  v_server ops.infrastructure;
begin
  if not v_changed then
    return new;
  end if;
  if auth.uid() is not null and coalesce(auth.role(), '') <> 'service_role'
     and ops.member_role(new.project_id) is distinct from 'admin' then
    raise exception 'only project admins choose an environment''s database, filestore and runtime' using errcode = '42501',
      hint = 'Ask an admin, or create a development environment from a branch (odooops env create-dev), which takes production''s.';
  end if;
  if new.db_server is not null then
    if not ops.infra_bound(new.project_id, 'database_server', new.db_server) then
      raise exception 'the database server "%" is not available to this project', new.db_server using errcode = '42501',
        hint = 'odooops infra list PROJECT shows what the operator bound to it.';
    end if;
    select * into v_server from ops.infrastructure i where i.kind = 'database_server' and i.name = new.db_server;
    if not exists (select 1 from jsonb_array_elements_text(coalesce(v_server.details -> 'databases', '["^.*$"]'::jsonb)) r
                   where new.db_name ~ r) then
      raise exception 'the database "%" is not one this project may use on the server "%"', new.db_name, new.db_server
        using errcode = '42501', hint = 'The operator''s registry limits the database names on that server.';
    end if;
  end if;
  if new.filestore_root is not null and not ops.infra_bound(new.project_id, 'filestore_root', new.filestore_root) then
    raise exception 'the filestore root "%" is not available to this project', new.filestore_root using errcode = '42501',
      hint = 'odooops infra list PROJECT shows what the operator bound to it.';
  end if;
  if new.runtime is not null then
    if not ops.infra_bound(new.project_id, 'runtime', new.runtime) then
      raise exception 'the runtime "%" is not available to this project', new.runtime using errcode = '42501',
        hint = 'odooops infra list PROJECT shows what the operator bound to it.';
    end if;
    select * into v_runtime from ops.infrastructure i where i.kind = 'runtime' and i.name = new.runtime;
    if v_runtime.details ->> 'kind' = 'local' then
      if new.http_port is null or new.http_port < (v_runtime.details -> 'httpPorts' ->> 0)::int
         or new.http_port > (v_runtime.details -> 'httpPorts' ->> 1)::int then
        raise exception 'the runtime "%" runs Odoo on ports % to %: give the environment a port in that range', new.runtime,
          v_runtime.details -> 'httpPorts' ->> 0, v_runtime.details -> 'httpPorts' ->> 1 using errcode = '22023';
      end if;
    elsif new.http_port is not null then
      raise exception 'the runtime "%" is reached over ssh: its port is the operator''s, not the environment''s', new.runtime using errcode = '22023';
    end if;
  elsif new.http_port is not null then
    raise exception 'an HTTP port needs a runtime' using errcode = '22023';
  end if;
  return new;
end
$$;
create trigger environments_guard_infra before insert or update on ops.environments
  for each row execute function ops.environments_guard_infra();

-- The same audit and updated_at triggers as before, over the new columns.
create trigger environments_audit after insert or delete or update of project_id, name, stage, branch, url, db_server, db_name,
  filestore_root, runtime, http_port on ops.environments
  for each row execute function ops.audit_row_change();
create trigger environments_touch before update of project_id, name, stage, branch, url, db_server, db_name, filestore_root,
  runtime, http_port on ops.environments
  for each row when (old.* is distinct from new.*) execute function ops.touch_updated_at();

-- The lowest port of a local runtime's range no live environment of that runtime uses (other projects'
-- included, which the caller cannot see), for a new development environment or a deploy target.
create function ops.free_http_port(p_runtime text, p_except uuid default null) returns integer
language sql stable security definer set search_path = '' as $$
  select p from ops.infrastructure i,
    generate_series((i.details -> 'httpPorts' ->> 0)::int, (i.details -> 'httpPorts' ->> 1)::int) p
  where i.kind = 'runtime' and i.name = p_runtime and i.details ->> 'kind' = 'local'
    and not exists (select 1 from ops.environments e where e.runtime = p_runtime and e.http_port = p
                    and e.archived_at is null and e.id is distinct from p_except)
  order by p limit 1
$$;

-- A project's repository must be one the registry allows it.
create function ops.projects_guard_repository() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.repo_url is not null and (tg_op = 'INSERT' or new.repo_url is distinct from old.repo_url)
     and not exists (select 1 from ops.infrastructure i
                     where i.kind = 'repository' and (new.slug = any (i.projects) or '*' = any (i.projects))
                       and new.repo_url ~ (i.details ->> 'regex')) then
    raise exception 'the repository % is not allowed for project %', new.repo_url, new.slug using errcode = '42501',
      hint = 'The operator allows repositories (URLs or patterns) in the registry; odooops infra list PROJECT shows them.';
  end if;
  return new;
end
$$;
create trigger projects_guard_repository before insert or update of repo_url on ops.projects
  for each row execute function ops.projects_guard_repository();

-- Grants ---------------------------------------------------------------------------------------------
revoke all on ops.instance_admins, ops.infrastructure, ops.infrastructure_source, ops.environment_settings_before_registry
  from public, anon, authenticated, service_role;
grant select, delete on ops.instance_admins to authenticated;
grant insert (user_id) on ops.instance_admins to authenticated;
grant select on ops.infrastructure to authenticated;
grant select, insert, update, delete on ops.instance_admins, ops.infrastructure, ops.infrastructure_source to service_role;
grant insert (db_server, filestore_root, runtime, http_port) on ops.environments to authenticated;
grant update (db_server, filestore_root, runtime, http_port) on ops.environments to authenticated;

revoke execute on function ops.is_instance_admin(), ops.infra_bound(uuid, text, text), ops.environments_guard_infra(), ops.free_http_port(text, uuid),
  ops.projects_guard_repository(), ops.instance_admins_keep_one() from public, anon, authenticated, service_role;
grant execute on function ops.is_instance_admin(), ops.infra_bound(uuid, text, text), ops.free_http_port(text, uuid) to authenticated, service_role;
