-- Alerts (issue 16): a failed backup or verify run, a missed daily backup, a backup store filling up.
-- An alert is a row of ops.alerts, raised once per (project, environment, kind) per 6 hours so a
-- flapping backup does not spam; announced on the project's Realtime topic (event 'alert') for the
-- editors that have it open; delivered by a worker to the channels the project chose among those the
-- operator's registry binds to it (webhooks and SMTP servers are infrastructure: a URL chosen by an API
-- user would make the worker a request forger inside the operator's network).

-- Which registry channels a project's alerts go to, and the addresses SMTP channels mail.
create table ops.alert_settings (
  project_id uuid primary key references ops.projects (id) on delete cascade,
  channels text[] not null default '{}'
    constraint alert_settings_channels_count check (cardinality(channels) <= 20),
  emails text[] not null default '{}'
    constraint alert_settings_emails_count check (cardinality(emails) <= 20),
  updated_by uuid default auth.uid(),
  updated_at timestamptz not null default now()
);
alter table ops.alert_settings enable row level security;

-- The API checks the same; this holds for a write that bypasses it (PostgREST on Supabase, SQL).
create function ops.alert_settings_check() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_channel text;
  v_email text;
begin
  foreach v_channel in array new.channels loop
    if v_channel !~ '^[a-z0-9][a-z0-9._-]{0,62}$' or not ops.infra_bound(new.project_id, 'alert_channel', v_channel) then
      raise exception 'the alert channel "%" is not bound to this project', v_channel using errcode = '42501',
        hint = 'The operator declares alert channels and binds them to projects in the registry; odooops infra list PROJECT shows them.';
    end if;
  end loop;
  foreach v_email in array new.emails loop
    if char_length(v_email) > 320 or v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
      raise exception '"%" is not an email address', left(v_email, 80) using errcode = '22023';
    end if;
  end loop;
  new.updated_at := now();
  new.updated_by := auth.uid();
  return new;
end
$$;
create trigger alert_settings_check before insert or update on ops.alert_settings
  for each row execute function ops.alert_settings_check();

create function ops.audit_alert_settings() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform ops.audit(coalesce(new.project_id, old.project_id), 'alert_settings.' || lower(tg_op), 'alert_settings',
    jsonb_strip_nulls(jsonb_build_object('channels', new.channels, 'emails', new.emails)));
  return null;
end
$$;
create trigger alert_settings_audit after insert or update or delete on ops.alert_settings
  for each row execute function ops.audit_alert_settings();

-- Admins only: the recipients' addresses are not for every member to read (as with invitations).
create policy alert_settings_select on ops.alert_settings for select to authenticated
  using (ops.member_role(project_id) = 'admin');
create policy alert_settings_insert on ops.alert_settings for insert to authenticated
  with check (ops.member_role(project_id) = 'admin');
create policy alert_settings_update on ops.alert_settings for update to authenticated
  using (ops.member_role(project_id) = 'admin') with check (ops.member_role(project_id) = 'admin');
create policy alert_settings_delete on ops.alert_settings for delete to authenticated
  using (ops.member_role(project_id) = 'admin');

-- The alerts ---------------------------------------------------------------------------------------
create table ops.alerts (
  id bigint generated always as identity primary key,
  project_id uuid not null references ops.projects (id) on delete cascade,
  environment_id uuid references ops.environments (id) on delete cascade,
  kind text not null constraint alerts_kind check (kind in ('backup_failed', 'backup_missed', 'verify_failed', 'store_filling')),
  -- One line a notification shows ("Backup of production failed"), and the whole message: what failed,
  -- when, the run, what to do next. Never a password, a worker's path or a bucket credential.
  title text not null constraint alerts_title_length check (char_length(title) <= 300),
  message text not null constraint alerts_message_length check (char_length(message) <= 8000),
  run_id bigint references ops.runs (id) on delete set null,
  created_at timestamptz not null default now(),
  -- Per channel: {"channel", "kind", "ok", "attempts", "status"?, "error"?, "at"}; no URL, no secret.
  deliveries jsonb not null default '[]'::jsonb constraint alerts_deliveries_array check (jsonb_typeof(deliveries) = 'array'),
  -- Null while a worker still has to deliver it.
  delivered_at timestamptz,
  claimed_by text,
  claimed_until timestamptz
);
create index alerts_project on ops.alerts (project_id, created_at desc);
create index alerts_dedupe on ops.alerts (project_id, kind, environment_id, created_at desc);
create index alerts_undelivered on ops.alerts (id) where delivered_at is null;
alter table ops.alerts enable row level security;
create policy alerts_select on ops.alerts for select to authenticated using (ops.is_member(project_id));

-- Raises an alert unless the same one (project, environment, kind) was raised in the last 6 hours;
-- returns its id, or null when it was a repeat. Announced on the project's topic at once; a worker
-- is told (ops_alerts) when the project has channels to deliver it to.
create function ops.raise_alert(p_project uuid, p_environment uuid, p_kind text, p_title text, p_message text, p_run bigint default null)
returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  v_id bigint;
  v_env_name text;
  v_channels integer;
begin
  -- Two raisers at once (two schedulers, a run failing while the scheduler checks) meet here.
  perform pg_advisory_xact_lock(hashtextextended('ops.alert:' || p_project || ':' || coalesce(p_environment::text, '-') || ':' || p_kind, 0));
  if exists (select 1 from ops.alerts a where a.project_id = p_project and a.kind = p_kind
             and a.environment_id is not distinct from p_environment and a.created_at > now() - interval '6 hours') then
    return null;
  end if;
  select coalesce(cardinality(s.channels), 0) into v_channels from ops.alert_settings s where s.project_id = p_project;
  insert into ops.alerts (project_id, environment_id, kind, title, message, run_id, delivered_at)
  values (p_project, p_environment, p_kind, left(p_title, 300), left(p_message, 8000), p_run,
          case when coalesce(v_channels, 0) = 0 then now() end)
  returning id into v_id;
  select e.name into v_env_name from ops.environments e where e.id = p_environment;
  perform ops.broadcast_project(p_project, 'alert', jsonb_build_object(
    'id', v_id, 'project_id', p_project, 'environment', v_env_name, 'kind', p_kind, 'title', left(p_title, 300),
    'message', left(p_message, 2000), 'run_id', p_run, 'created_at', ops.iso_time(now())));
  if coalesce(v_channels, 0) > 0 then
    perform pg_notify('ops_alerts', v_id::text);
  end if;
  return v_id;
end
$$;

-- A backup or verify run that fails raises its alert, however it failed (its executor's error, or the
-- lease sweep after its last attempt). The run's error was redacted by the worker before it was stored.
create function ops.alert_failed_run() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_env ops.environments;
  v_slug text;
  v_what text;
  v_title text;
  v_next text;
  v_at text := to_char(coalesce(new.finished_at, now()) at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
begin
  select * into v_env from ops.environments e where e.id = new.environment_id;
  select p.slug into v_slug from ops.projects p where p.id = new.project_id;
  if new.kind = 'backup' then
    v_what := coalesce(new.params ->> 'kind', 'manual') || ' backup';
    v_title := format('Backup of %s failed', v_env.name);
    v_next := format('read its log (odooops run logs %s), fix the cause, then back up again (odooops run retry %s); until then %s has no new backup',
                     new.id, new.id, v_env.name);
  else
    v_what := format('verify of backup %s', coalesce(new.params ->> 'backup', '?'));
    v_title := format('Verify of a backup of %s failed', v_env.name);
    v_next := format('read its log (odooops run logs %s); a damaged backup cannot be restored: take a new one (odooops run queue %s %s backup) and verify it (odooops backup verify ID)',
                     new.id, v_slug, v_env.name);
  end if;
  perform ops.raise_alert(new.project_id, new.environment_id, case new.kind when 'backup' then 'backup_failed' else 'verify_failed' end,
    v_title,
    format('%s: %s of %s (%s) in project %s failed at %s, run #%s: %s. Next: %s.',
           v_title, v_what, v_env.name, v_env.stage, v_slug, v_at, new.id, coalesce(left(new.error, 2000), 'no error recorded'), v_next),
    new.id);
  return null;
end
$$;
create trigger runs_alert_failed after update of status on ops.runs
  for each row when (new.status = 'failed' and old.status is distinct from 'failed' and new.kind in ('backup', 'verify'))
  execute function ops.alert_failed_run();

-- Deliveries: a worker claims undelivered alerts with a lease (another worker takes them over if it
-- dies), and records what each channel answered.
create function ops.claim_alerts(p_worker text, p_lease_seconds integer, p_limit integer default 20)
returns table (id bigint, project_id uuid, project_slug text, environment text, kind text, title text, message text,
               run_id bigint, created_at timestamptz, channels text[], emails text[])
language plpgsql security definer set search_path = '' as $$
begin
  return query
  with claimed as (
    update ops.alerts a set claimed_by = p_worker, claimed_until = now() + make_interval(secs => p_lease_seconds)
    where a.id in (select x.id from ops.alerts x
                   where x.delivered_at is null and (x.claimed_until is null or x.claimed_until < now())
                   order by x.id limit p_limit for update skip locked)
    returning a.*
  )
  select c.id, c.project_id, p.slug, e.name, c.kind, c.title, c.message, c.run_id, c.created_at,
         coalesce(s.channels, '{}'), coalesce(s.emails, '{}')
  from claimed c join ops.projects p on p.id = c.project_id
  left join ops.environments e on e.id = c.environment_id
  left join ops.alert_settings s on s.project_id = c.project_id
  order by c.id;
end
$$;

create function ops.record_alert_delivery(p_alert bigint, p_worker text, p_deliveries jsonb) returns boolean
language sql security definer set search_path = '' as $$
  update ops.alerts set deliveries = p_deliveries, delivered_at = now(), claimed_by = null, claimed_until = null
  where id = p_alert and claimed_by = p_worker and delivered_at is null
  returning true
$$;

-- Missed daily backups ------------------------------------------------------------------------------
-- "While a worker was around": the schedulers (one per server with a worker) note that they are alive;
-- a gap of over an hour starts a new stretch. A machine that was off for a week does not alert the
-- moment it comes back: its production gets 26 hours from then, like any new environment.
create table ops.scheduler_presence (
  id boolean primary key default true constraint scheduler_presence_one check (id),
  since timestamptz not null,
  last_seen timestamptz not null
);
alter table ops.scheduler_presence enable row level security;

create function ops.check_missed_backups() returns integer
language plpgsql security definer set search_path = '' as $$
declare
  v_since timestamptz;
  v_env record;
  v_count integer := 0;
begin
  if auth.role() is distinct from 'service_role' then
    raise exception 'only the service role checks for missed backups' using errcode = '42501';
  end if;
  insert into ops.scheduler_presence (id, since, last_seen) values (true, now(), now())
  on conflict (id) do update set
    since = case when ops.scheduler_presence.last_seen < now() - interval '1 hour' then now() else ops.scheduler_presence.since end,
    last_seen = now()
  returning since into v_since;
  for v_env in
    select e.id, e.project_id, e.name, p.slug,
           (select max(b.created_at) from ops.backups b where b.environment_id = e.id and b.kind = 'daily') as last_daily,
           greatest(e.created_at, v_since) as watched_since
    from ops.environments e join ops.projects p on p.id = e.project_id
    where e.stage = 'production' and e.archived_at is null
    order by e.id
  loop
    if coalesce(v_env.last_daily, v_env.watched_since) < now() - interval '26 hours'
       and v_env.watched_since < now() - interval '26 hours' then
      if ops.raise_alert(v_env.project_id, v_env.id, 'backup_missed', format('No daily backup of %s for 26 hours', v_env.name),
           format('No daily backup of %s for 26 hours: production of project %s has no good daily backup since %s, although a worker was running. Next: look at its recent backup runs (odooops run list --project %s --env %s), fix what stops them, and back up now (odooops run queue %s %s backup --follow).',
                  v_env.name, v_env.slug,
                  coalesce(to_char(v_env.last_daily at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), 'it was created'),
                  v_env.slug, v_env.name, v_env.slug, v_env.name)) is not null then
        v_count := v_count + 1;
      end if;
    end if;
  end loop;
  return v_count;
end
$$;

-- Weekly sampled verify ------------------------------------------------------------------------------
-- Once per ISO week, for each environment with backups: a verify of its newest backup and of one older
-- backup chosen at random among those retention kept. Both go through the queue like any run of the
-- environment, so they run one at a time there, never beside a backup or a restore of it.
create function ops.schedule_weekly_verifies(p_day date default (now() at time zone 'UTC')::date) returns integer
language plpgsql security definer set search_path = '' as $$
declare
  v_week text := to_char(p_day, 'IYYY-"W"IW');
  v_env record;
  v_backup uuid;
  v_key text;
  v_created boolean;
  v_count integer := 0;
begin
  if auth.role() is distinct from 'service_role' then
    raise exception 'only the service role schedules runs' using errcode = '42501';
  end if;
  if not exists (select 1 from ops.run_kinds where kind = 'verify') then
    return 0;
  end if;
  for v_env in
    select distinct b.environment_id as id, b.project_id from ops.backups b
    join ops.environments e on e.id = b.environment_id where e.archived_at is null order by 1
  loop
    foreach v_key in array array['newest', 'sample'] loop
      -- Asked every few minutes all week: the random pick is made once, when the week's key is new.
      continue when exists (select 1 from ops.runs r where r.project_id = v_env.project_id
                              and r.idempotency_key = 'verify-' || v_key || ':' || v_week || ':' || v_env.id);
      if v_key = 'newest' then
        select b.id into v_backup from ops.backups b where b.environment_id = v_env.id order by b.created_at desc limit 1;
      else
        select b.id into v_backup from ops.backups b where b.environment_id = v_env.id
          and b.id <> (select n.id from ops.backups n where n.environment_id = v_env.id order by n.created_at desc limit 1)
          order by random() limit 1;
      end if;
      continue when v_backup is null;
      begin
        select q.created into v_created from ops.queue_run(v_env.id, 'verify', jsonb_build_object('backup', v_backup),
                                                             'verify-' || v_key || ':' || v_week || ':' || v_env.id) q;
        v_count := v_count + v_created::integer;
      exception when unique_violation then
        -- Another scheduler queued this week's run at the same moment (with its own random pick).
        null;
      end;
    end loop;
  end loop;
  return v_count;
end
$$;

-- Grants ---------------------------------------------------------------------------------------------
grant select, delete on ops.alert_settings to authenticated;
grant insert (project_id, channels, emails) on ops.alert_settings to authenticated;
grant update (channels, emails) on ops.alert_settings to authenticated;
grant select on ops.alerts to authenticated;
grant select, insert, update, delete on ops.alert_settings, ops.alerts, ops.scheduler_presence to service_role;

revoke execute on function ops.raise_alert(uuid, uuid, text, text, text, bigint), ops.claim_alerts(text, integer, integer),
  ops.record_alert_delivery(bigint, text, jsonb), ops.check_missed_backups(), ops.schedule_weekly_verifies(date),
  ops.alert_failed_run(), ops.alert_settings_check(), ops.audit_alert_settings()
  from public, anon, authenticated, service_role;
grant execute on function ops.raise_alert(uuid, uuid, text, text, text, bigint), ops.claim_alerts(text, integer, integer),
  ops.record_alert_delivery(bigint, text, jsonb), ops.check_missed_backups(), ops.schedule_weekly_verifies(date)
  to service_role;
