-- The mail catcher (issue 17): staging and development Odoo send their mail to an SMTP endpoint of
-- OdooOps, which keeps it per environment for the members who may operate the environment, and never
-- sends it on.
--  * ops.mail_credentials: one SMTP login per environment, issued by the worker that neutralizes a clone
--    into it (ops.issue_mail_credential, for the run's own environment; never a production one). Only a
--    SHA-256 of the secret is kept: the secret is 32 random bytes, so a slow hash would add nothing.
--    Nobody but OdooOps reads the table (no policy for authenticated).
--  * ops.mails: each caught message as it arrived (raw, bytea) plus what the list shows; the catcher
--    stores through ops.store_mail, which refuses production again, applies the retention and tells the
--    project's topic (event 'mail', ids only).

create table ops.mail_credentials (
  environment_id uuid primary key references ops.environments (id) on delete cascade,
  project_id uuid not null references ops.projects (id) on delete cascade,
  username text not null unique constraint mail_credentials_username_format check (username ~ '^[a-z0-9][a-z0-9._/-]{0,200}$'),
  secret_sha256 bytea not null constraint mail_credentials_hash_length check (length(secret_sha256) = 32),
  run_id bigint,
  created_at timestamptz not null default now()
);
alter table ops.mail_credentials enable row level security;

create table ops.mails (
  id bigint generated always as identity primary key,
  environment_id uuid not null references ops.environments (id) on delete cascade,
  project_id uuid not null references ops.projects (id) on delete cascade,
  received_at timestamptz not null default now(),
  envelope_from text not null default '',
  envelope_to text[] not null,
  from_header text not null default '',
  to_header text not null default '',
  subject text not null default '',
  sent_at timestamptz,
  size_bytes integer not null,
  attachments integer not null default 0,
  raw bytea not null
);
create index mails_environment on ops.mails (environment_id, received_at desc, id desc);
create index mails_received on ops.mails (received_at);
alter table ops.mails enable row level security;

-- Mail is for those who may operate the environment (logs, mail and shells: ops.can_operate).
create policy mails_select on ops.mails for select to authenticated
  using (exists (select 1 from ops.environments e where e.id = mails.environment_id and ops.can_operate(e.project_id, e.stage)));

-- The worker holding a clone (or restore) run of a staging or development environment issues its login.
create function ops.issue_mail_credential(p_run bigint, p_worker text, p_username text, p_secret_sha256 bytea) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs := ops.held_run(p_run, p_worker);
  v_stage ops.stage;
begin
  select stage into v_stage from ops.environments where id = v_run.environment_id;
  if v_stage = 'production' then
    raise exception 'production environments get no mail catcher login: their mail is real' using errcode = '42501';
  end if;
  -- The name is the environment's as it is now: a login still named after an environment that was renamed
  -- since (and whose old name is this one's) is stale, and goes; that environment's next clone issues anew.
  delete from ops.mail_credentials where username = p_username and environment_id <> v_run.environment_id;
  insert into ops.mail_credentials (environment_id, project_id, username, secret_sha256, run_id)
  values (v_run.environment_id, v_run.project_id, p_username, p_secret_sha256, p_run)
  on conflict (environment_id) do update set username = excluded.username, secret_sha256 = excluded.secret_sha256,
    run_id = excluded.run_id, created_at = now();
end
$$;

-- The catcher's check of a login: the environment it names, when it is not (or no longer) production.
create function ops.mail_login(p_username text) returns table (environment_id uuid, project_id uuid, secret_sha256 bytea)
language sql stable security definer set search_path = '' as $$
  select c.environment_id, c.project_id, c.secret_sha256
  from ops.mail_credentials c join ops.environments e on e.id = c.environment_id
  where c.username = p_username and e.stage <> 'production'
$$;

-- Stores one caught message and applies the retention for its environment: older than p_keep_days,
-- beyond the newest p_keep_count, or beyond p_keep_bytes in all (oldest first) goes.
create function ops.store_mail(p_environment uuid, p_envelope_from text, p_envelope_to text[], p_from text, p_to text,
  p_subject text, p_sent_at timestamptz, p_attachments integer, p_raw bytea,
  p_keep_days integer, p_keep_count integer, p_keep_bytes bigint) returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  v_env ops.environments;
  v_id bigint;
begin
  select * into v_env from ops.environments where id = p_environment;
  if not found or v_env.stage = 'production' then
    raise exception 'no mail is caught for this environment' using errcode = '42501';
  end if;
  insert into ops.mails (environment_id, project_id, envelope_from, envelope_to, from_header, to_header, subject, sent_at, size_bytes, attachments, raw)
  values (v_env.id, v_env.project_id, left(coalesce(p_envelope_from, ''), 1000), p_envelope_to, left(coalesce(p_from, ''), 2000),
    left(coalesce(p_to, ''), 4000), left(coalesce(p_subject, ''), 2000), p_sent_at, length(p_raw), greatest(p_attachments, 0), p_raw)
  returning id into v_id;
  delete from ops.mails m where m.environment_id = v_env.id and m.id in (
    select id from (
      select id, received_at, row_number() over w as n, sum(size_bytes) over w as bytes
      from ops.mails where environment_id = v_env.id window w as (order by received_at desc, id desc)
    ) k where k.id <> v_id and (k.received_at < now() - make_interval(days => p_keep_days) or k.n > p_keep_count or k.bytes > p_keep_bytes));
  perform ops.broadcast_project(v_env.project_id, 'mail', jsonb_build_object('environment', v_env.id, 'id', v_id));
  return v_id;
end
$$;

-- Age-based retention for environments that receive nothing more (the catcher runs it now and then).
create function ops.expire_mails(p_keep_days integer) returns integer
language sql security definer set search_path = '' as $$
  with gone as (delete from ops.mails where received_at < now() - make_interval(days => p_keep_days) returning 1)
  select count(*)::integer from gone
$$;

revoke all on ops.mail_credentials, ops.mails from public, anon, authenticated, service_role;
grant select on ops.mails to authenticated;
grant select, insert, update, delete on ops.mail_credentials, ops.mails to service_role;
revoke execute on function ops.issue_mail_credential(bigint, text, text, bytea), ops.mail_login(text),
  ops.store_mail(uuid, text, text[], text, text, text, timestamptz, integer, bytea, integer, integer, bigint), ops.expire_mails(integer)
  from public, anon, authenticated, service_role;
grant execute on function ops.issue_mail_credential(bigint, text, text, bytea), ops.mail_login(text),
  ops.store_mail(uuid, text, text[], text, text, text, timestamptz, integer, bytea, integer, integer, bigint), ops.expire_mails(integer)
  to service_role;
