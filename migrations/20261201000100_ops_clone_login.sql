-- How people log in on a masked clone (SECURITY.md, "Logging in to a clone").
--  * The operator declares secrets in the registry (secrets: NAME: {value: env:X | file:/p, projects: [...]}).
--    The control plane learns their names and bindings only (ops.infrastructure, kind 'secret'), never
--    where the value is nor the value: a project admin can name a secret the operator bound to the
--    project, and nothing else (a literal, an env:/file: reference or another project's secret).
--  * A project's clone password is such a name (ops.projects.clone_password_secret); the worker resolves
--    it from its own registry file when a clone runs.
--  * Without one, each clone gets a fresh random password, kept in ops.clone_logins for the members who
--    may operate the environment (not for viewers, who read every run's log and result).

alter table ops.infrastructure drop constraint infrastructure_kind;
alter table ops.infrastructure add constraint infrastructure_kind
  check (kind in ('database_server', 'filestore_root', 'runtime', 'repository', 'secret'));

alter table ops.projects
  add column clone_password_secret text
    constraint projects_clone_password_secret_format check (clone_password_secret ~ '^[a-z0-9][a-z0-9._-]{0,62}$');

-- For every writer (the API checks first, to say what exists): only a secret the operator bound to the
-- project. Who may write the column at all is projects_update's business (project admins).
create function ops.projects_guard_clone_password() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.clone_password_secret is not null
     and (tg_op = 'INSERT' or new.clone_password_secret is distinct from old.clone_password_secret)
     and not exists (select 1 from ops.infrastructure i
                     where i.kind = 'secret' and i.name = new.clone_password_secret
                       and (new.slug = any (i.projects) or '*' = any (i.projects))) then
    raise exception 'the secret "%" is not available to project %', new.clone_password_secret, new.slug using errcode = '42501',
      hint = 'The operator declares secrets in the registry (secrets:) and binds them to projects; odooops infra list PROJECT shows them.';
  end if;
  return new;
end
$$;
create trigger projects_guard_clone_password before insert or update of clone_password_secret on ops.projects
  for each row execute function ops.projects_guard_clone_password();

grant update (clone_password_secret) on ops.projects to authenticated;

-- The logins of an environment's latest clone. password: only the fresh one OdooOps made (no secret
-- configured); password_secret: the registry name whose value opens the clone (the value is never here).
create table ops.clone_logins (
  environment_id uuid primary key references ops.environments (id) on delete cascade,
  project_id uuid not null references ops.projects (id) on delete cascade,
  run_id bigint not null,
  logins text[] not null,
  password text,
  password_secret text,
  created_at timestamptz not null default now(),
  constraint clone_logins_one_password check ((password is null) <> (password_secret is null))
);
alter table ops.clone_logins enable row level security;

-- Those who may operate the environment (queue its runs) may log in to it; viewers may not.
create policy clone_logins_select on ops.clone_logins for select to authenticated
  using (exists (select 1 from ops.environments e where e.id = clone_logins.environment_id and ops.can_operate(e.project_id, e.stage)));

-- Written by the worker that holds the clone run, for the run's own environment only.
create function ops.record_clone_login(p_run bigint, p_worker text, p_logins text[], p_password text, p_secret text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs := ops.held_run(p_run, p_worker);
begin
  insert into ops.clone_logins (environment_id, project_id, run_id, logins, password, password_secret)
  values (v_run.environment_id, v_run.project_id, p_run, p_logins, p_password, p_secret)
  on conflict (environment_id) do update set run_id = excluded.run_id, logins = excluded.logins, password = excluded.password,
    password_secret = excluded.password_secret, created_at = now();
end
$$;

revoke all on ops.clone_logins from public, anon, authenticated, service_role;
grant select on ops.clone_logins to authenticated;
grant select, insert, update, delete on ops.clone_logins to service_role;
revoke execute on function ops.projects_guard_clone_password(), ops.record_clone_login(bigint, text, text[], text, text)
  from public, anon, authenticated, service_role;
grant execute on function ops.record_clone_login(bigint, text, text[], text, text) to service_role;
