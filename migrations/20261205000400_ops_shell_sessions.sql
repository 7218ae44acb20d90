-- Shells on an environment (a terminal, psql or odoo-bin shell; SECURITY.md, "Shells"). The server opens
-- one only after ops.open_shell_session said yes as the person asking: members who may operate the
-- stage (ops.can_operate), production only with the explicit confirmation the client sent. Every session
-- is recorded (who, when, which kind, from where, until when, how it ended) for the project's admins;
-- in production also what was typed, as Odoo.sh's sh_webshell.log does, and a line in the append-only
-- audit log, which nobody can rewrite (the session row itself is closed by the server).

create table ops.shell_sessions (
  id bigint generated always as identity primary key,
  project_id uuid not null references ops.projects (id) on delete cascade,
  environment_id uuid references ops.environments (id) on delete set null,
  environment text not null,
  stage ops.stage not null,
  user_id uuid not null,
  kind text not null constraint shell_sessions_kind check (kind in ('shell', 'psql', 'odoo')),
  client_address text constraint shell_sessions_client_address_length check (char_length(client_address) <= 200),
  server text constraint shell_sessions_server_length check (char_length(server) <= 200),
  confirmed boolean not null default false,
  opened_at timestamptz not null default now(),
  closed_at timestamptz,
  exit_code integer,
  end_reason text constraint shell_sessions_end_reason_length check (char_length(end_reason) <= 500),
  -- Production only: the bytes typed (as text, invalid UTF-8 replaced), up to 1 MiB.
  input text,
  input_truncated boolean not null default false
);
create index shell_sessions_project on ops.shell_sessions (project_id, id desc);
alter table ops.shell_sessions enable row level security;

-- The project's admins read them all; nobody else, not even the person who typed.
create policy shell_sessions_select on ops.shell_sessions for select to authenticated
  using (ops.member_role(project_id) = 'admin');

-- Called as the person opening the shell. Another project's or an unknown environment reads as missing.
create function ops.open_shell_session(p_project text, p_environment text, p_kind text, p_confirmed boolean,
                                       p_client text, p_server text)
returns table (session_id bigint, environment_id uuid, project_id uuid, project_slug text, name text, stage ops.stage,
               branch text, url text, db_server text, db_name text, filestore_root text, runtime text, http_port integer)
language plpgsql security definer set search_path = '' as $$
declare
  v_env ops.environments;
  v_id bigint;
begin
  if auth.uid() is null then
    raise exception 'sign in first' using errcode = '42501';
  end if;
  if p_kind is null or p_kind not in ('shell', 'psql', 'odoo') then
    raise exception 'unknown shell kind %', p_kind using errcode = '22023', hint = 'shell, psql or odoo';
  end if;
  select e.* into v_env from ops.environments e join ops.projects p on p.id = e.project_id
   where p.slug = p_project and e.name = p_environment and e.archived_at is null;
  if v_env.id is null or not ops.is_member(v_env.project_id) then
    raise exception 'no environment % in project %', p_environment, p_project using errcode = 'P0002';
  end if;
  if not ops.can_operate(v_env.project_id, v_env.stage) then
    raise exception 'your role on project % may not open shells on the % environment %', p_project, v_env.stage, p_environment
      using errcode = '42501',
      hint = 'Shells follow the stage rules: developers on development, testers on staging and development, admins everywhere; viewers never.';
  end if;
  if v_env.stage = 'production' and p_confirmed is not true then
    raise exception 'a shell on production % needs an explicit confirmation', p_environment
      using errcode = '42501', detail = 'confirmation_required',
      hint = 'Confirm it (--yes-production in the CLI; the dialog in VS Code): the session is recorded, what you type included.';
  end if;
  insert into ops.shell_sessions (project_id, environment_id, environment, stage, user_id, kind, client_address, server, confirmed)
  values (v_env.project_id, v_env.id, v_env.name, v_env.stage, auth.uid(), p_kind, left(p_client, 200), left(p_server, 200), coalesce(p_confirmed, false))
  returning id into v_id;
  if v_env.stage = 'production' then
    perform ops.audit(v_env.project_id, 'shell.open', v_env.name,
      jsonb_build_object('session', v_id, 'kind', p_kind, 'client', left(p_client, 200), 'server', left(p_server, 200)));
  end if;
  return query select v_id, v_env.id, v_env.project_id, p_project, v_env.name, v_env.stage, v_env.branch, v_env.url,
    v_env.db_server, v_env.db_name, v_env.filestore_root, v_env.runtime, v_env.http_port;
end
$$;

-- The server's (service_role): production input as it is typed, then the end. Closing happens once.
create function ops.shell_session_input(p_session bigint, p_chunk text) returns void
language sql security definer set search_path = '' as $$
  update ops.shell_sessions
     set input = left(coalesce(input, '') || p_chunk, 1048576),
         input_truncated = input_truncated or char_length(coalesce(input, '') || p_chunk) > 1048576
   where id = p_session and stage = 'production' and closed_at is null
$$;

create function ops.close_shell_session(p_session bigint, p_exit integer, p_reason text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v ops.shell_sessions;
begin
  update ops.shell_sessions set closed_at = now(), exit_code = p_exit, end_reason = left(p_reason, 500)
   where id = p_session and closed_at is null returning * into v;
  if v.id is not null and v.stage = 'production' then
    perform ops.audit(v.project_id, 'shell.close', v.environment,
      jsonb_build_object('session', v.id, 'kind', v.kind, 'exit_code', p_exit, 'reason', left(p_reason, 500),
                         'seconds', round(extract(epoch from v.closed_at - v.opened_at)::numeric, 1)));
  end if;
end
$$;

revoke all on ops.shell_sessions from public, anon, authenticated, service_role;
grant select on ops.shell_sessions to authenticated;
grant select on ops.shell_sessions to service_role;
revoke execute on function ops.open_shell_session(text, text, text, boolean, text, text),
  ops.shell_session_input(bigint, text), ops.close_shell_session(bigint, integer, text) from public, anon, authenticated, service_role;
grant execute on function ops.open_shell_session(text, text, text, boolean, text, text) to authenticated;
grant execute on function ops.shell_session_input(bigint, text), ops.close_shell_session(bigint, integer, text) to service_role;
