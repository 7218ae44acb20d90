-- Who may do what: role helpers, row level security on every table, the append-only audit log, and
-- explicit grants (Supabase no longer exposes new tables to the API roles by default).

-- Role helpers are SECURITY DEFINER so policies on project_members do not recurse into themselves.
create function ops.member_role(p_project uuid) returns ops.member_role
language sql stable security definer set search_path = '' as $$
  select m.role from ops.project_members m where m.project_id = p_project and m.user_id = auth.uid()
$$;

create function ops.is_member(p_project uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from ops.project_members m where m.project_id = p_project and m.user_id = auth.uid())
$$;

-- Odoo.sh's stage rules: developers work on development only, testers on staging and development,
-- admins everywhere; viewers change nothing.
create function ops.role_can_operate(p_role ops.member_role, p_stage ops.stage) returns boolean
language sql immutable set search_path = '' as $$
  select case p_stage
    when 'development' then p_role in ('developer', 'tester', 'admin')
    when 'staging' then p_role in ('tester', 'admin')
    when 'production' then p_role = 'admin'
  end
$$;

create function ops.can_operate(p_project uuid, p_stage ops.stage) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce(ops.role_can_operate(ops.member_role(p_project), p_stage), false)
$$;

create function ops.can_read_run(p_run bigint) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from ops.runs r join ops.project_members m on m.project_id = r.project_id
    where r.id = p_run and m.user_id = auth.uid())
$$;

-- Audit ------------------------------------------------------------------------------------------
create function ops.audit(p_project uuid, p_action text, p_target text, p_details jsonb) returns void
language sql security definer set search_path = '' as $$
  insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
  values (auth.uid(), coalesce(auth.role(), session_user::text), p_project, p_action, p_target,
          coalesce(p_details, '{}'::jsonb))
$$;

create function ops.audit_log_is_append_only() returns trigger
language plpgsql set search_path = '' as $$
begin
  raise exception 'ops.audit_log is append-only: % is not allowed', tg_op
    using errcode = '42501', hint = 'Audit entries can only be added, never changed or removed.';
end
$$;
create trigger audit_log_no_update before update or delete on ops.audit_log
  for each row execute function ops.audit_log_is_append_only();
create trigger audit_log_no_truncate before truncate on ops.audit_log
  for each statement execute function ops.audit_log_is_append_only();

-- One trigger function records changes to the tables people edit. Bookkeeping columns the worker
-- moves on every claim (active_run_id, updated_at) are not news and are left out.
create function ops.audit_row_change() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_old jsonb := case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) - 'active_run_id' - 'updated_at' end;
  v_new jsonb := case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) - 'active_run_id' - 'updated_at' end;
  v_row jsonb := coalesce(v_new, v_old);
  v_project uuid := coalesce(v_row ->> 'project_id', v_row ->> 'id')::uuid;
  v_target text := tg_table_name || ':' || coalesce(v_row ->> 'id', v_row ->> 'user_id');
begin
  if tg_op = 'UPDATE' and v_old = v_new then
    return null;
  end if;
  perform ops.audit(v_project, tg_table_name || '.' || lower(tg_op), v_target,
                    jsonb_strip_nulls(jsonb_build_object('old', v_old, 'new', v_new)));
  return null;
end
$$;
create trigger projects_audit after insert or update or delete on ops.projects
  for each row execute function ops.audit_row_change();
create trigger project_members_audit after insert or update or delete on ops.project_members
  for each row execute function ops.audit_row_change();
-- Column list: the claim's update of active_run_id, many times a second, fires nothing.
create trigger environments_audit after insert or delete or update of project_id, name, stage, branch, url, db_host, db_port,
  db_name, db_user, db_password_ref, filestore_path on ops.environments
  for each row execute function ops.audit_row_change();
create trigger approvals_audit after insert or update or delete on ops.approvals
  for each row execute function ops.audit_row_change();

-- Project bookkeeping ----------------------------------------------------------------------------
-- Whoever creates a project is its first admin.
create function ops.projects_add_creator() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.created_by is not null then
    insert into ops.project_members (project_id, user_id, role, added_by)
    values (new.id, new.created_by, 'admin', new.created_by);
  end if;
  return null;
end
$$;
create trigger projects_add_creator after insert on ops.projects
  for each row execute function ops.projects_add_creator();

-- A project always keeps an admin: removing or demoting the last one is refused.
create function ops.project_members_keep_admin() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if old.role = 'admin' and (tg_op = 'DELETE' or new.role <> 'admin')
     and exists (select 1 from ops.projects p where p.id = old.project_id)
     and not exists (select 1 from ops.project_members m
                     where m.project_id = old.project_id and m.role = 'admin' and m.user_id <> old.user_id) then
    raise exception 'a project needs at least one admin' using errcode = '23514',
      hint = 'Make another member admin first.';
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end
$$;
create trigger project_members_keep_admin before update or delete on ops.project_members
  for each row execute function ops.project_members_keep_admin();

-- A password reference makes the worker hand that secret to whatever host the environment names, so
-- only admins may set or change one (or change where it is sent): otherwise a developer could point a
-- development environment at their own server with production's reference. Checked for API users
-- (a JWT); the service role and the server's own connection are trusted.
create function ops.environments_guard_secrets() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if auth.uid() is null or coalesce(auth.role(), '') = 'service_role' then
    return new;
  end if;
  if new.db_password_ref is not null
     and (tg_op = 'INSERT' or new.db_password_ref is distinct from old.db_password_ref
          or new.db_host is distinct from old.db_host or new.db_port is distinct from old.db_port
          or new.db_user is distinct from old.db_user)
     and ops.member_role(new.project_id) is distinct from 'admin' then
    raise exception 'only project admins may set a database password reference or change where it is used'
      using errcode = '42501', hint = 'Ask an admin to add the reference, or connect without one (trust, peer or ~/.pgpass on the worker).';
  end if;
  return new;
end
$$;
create trigger environments_guard_secrets before insert or update on ops.environments
  for each row execute function ops.environments_guard_secrets();

create function ops.touch_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end
$$;
create trigger environments_touch before update of project_id, name, stage, branch, url, db_host, db_port, db_name, db_user,
  db_password_ref, filestore_path on ops.environments
  for each row when (old.* is distinct from new.*) execute function ops.touch_updated_at();

-- Row level security -----------------------------------------------------------------------------
alter table ops.projects enable row level security;
alter table ops.project_members enable row level security;
alter table ops.environments enable row level security;
alter table ops.approvals enable row level security;
alter table ops.runs enable row level security;
alter table ops.run_logs enable row level security;
alter table ops.backups enable row level security;
alter table ops.audit_log enable row level security;
alter table ops.run_kinds enable row level security;

create policy projects_select on ops.projects for select to authenticated
  using (ops.is_member(id));
create policy projects_insert on ops.projects for insert to authenticated
  with check (created_by = (select auth.uid()));
create policy projects_update on ops.projects for update to authenticated
  using (ops.member_role(id) = 'admin') with check (ops.member_role(id) = 'admin');
create policy projects_delete on ops.projects for delete to authenticated
  using (ops.member_role(id) = 'admin');

create policy project_members_select on ops.project_members for select to authenticated
  using (ops.is_member(project_id));
create policy project_members_insert on ops.project_members for insert to authenticated
  with check (ops.member_role(project_id) = 'admin');
create policy project_members_update on ops.project_members for update to authenticated
  using (ops.member_role(project_id) = 'admin') with check (ops.member_role(project_id) = 'admin');
create policy project_members_delete on ops.project_members for delete to authenticated
  using (ops.member_role(project_id) = 'admin');

create policy environments_select on ops.environments for select to authenticated
  using (ops.is_member(project_id));
create policy environments_insert on ops.environments for insert to authenticated
  with check (ops.can_operate(project_id, stage));
create policy environments_update on ops.environments for update to authenticated
  using (ops.can_operate(project_id, stage)) with check (ops.can_operate(project_id, stage));
create policy environments_delete on ops.environments for delete to authenticated
  using (ops.can_operate(project_id, stage));

-- Runs, logs, approvals and backups are written only through the functions of the run life cycle.
create policy runs_select on ops.runs for select to authenticated using (ops.is_member(project_id));
create policy run_logs_select on ops.run_logs for select to authenticated using (ops.can_read_run(run_id));
create policy approvals_select on ops.approvals for select to authenticated using (ops.is_member(project_id));
create policy backups_select on ops.backups for select to authenticated using (ops.is_member(project_id));
create policy run_kinds_select on ops.run_kinds for select to authenticated using (true);
-- As on Odoo.sh, audit logs are for admins.
create policy audit_log_select on ops.audit_log for select to authenticated
  using (ops.member_role(project_id) = 'admin');

-- Grants -----------------------------------------------------------------------------------------
revoke all on all tables in schema ops from public, anon, authenticated, service_role;
revoke all on all sequences in schema ops from public, anon, authenticated, service_role;
revoke execute on all functions in schema ops from public, anon, authenticated, service_role;

grant usage on schema ops to anon, authenticated, service_role;

grant select, delete on ops.projects to authenticated;
grant insert (slug, name) on ops.projects to authenticated;
grant update (name) on ops.projects to authenticated;
grant select, delete on ops.project_members to authenticated;
grant insert (project_id, user_id, role, display_name) on ops.project_members to authenticated;
grant update (role, display_name) on ops.project_members to authenticated;
grant select, delete on ops.environments to authenticated;
grant insert (project_id, name, stage, branch, url, db_host, db_port, db_name, db_user, db_password_ref,
              filestore_path) on ops.environments to authenticated;
grant update (branch, url, db_host, db_port, db_name, db_user, db_password_ref, filestore_path)
  on ops.environments to authenticated;
grant select on ops.runs, ops.run_logs, ops.approvals, ops.backups, ops.audit_log, ops.run_kinds to authenticated;

grant select, insert, update, delete on ops.projects, ops.project_members, ops.environments, ops.approvals,
  ops.runs, ops.run_logs, ops.backups, ops.run_kinds to service_role;
grant select, insert on ops.audit_log to service_role;

grant execute on function ops.member_role(uuid), ops.is_member(uuid), ops.role_can_operate(ops.member_role, ops.stage),
  ops.can_operate(uuid, ops.stage), ops.can_read_run(bigint) to authenticated, service_role;
