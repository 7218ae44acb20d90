-- The daily schedule, as on Odoo.sh: a daily backup of every production environment, and a retention
-- run for every environment that has backups. Queued through ops.queue_run with a key per day, so any
-- number of servers calling this at any time queue each run once.
create function ops.schedule_daily_runs(p_day date default (now() at time zone 'UTC')::date) returns integer
language plpgsql security definer set search_path = '' as $$
declare
  v_env record;
  v_created boolean;
  v_count integer := 0;
begin
  if auth.role() is distinct from 'service_role' then
    raise exception 'only the service role schedules runs' using errcode = '42501';
  end if;
  if exists (select 1 from ops.run_kinds where kind = 'backup') then
    for v_env in select id from ops.environments where stage = 'production' order by id loop
      select q.created into v_created
      from ops.queue_run(v_env.id, 'backup', '{"kind": "daily"}'::jsonb, 'daily-backup:' || p_day || ':' || v_env.id) q;
      v_count := v_count + v_created::integer;
    end loop;
  end if;
  if exists (select 1 from ops.run_kinds where kind = 'retention') then
    for v_env in select distinct environment_id as id from ops.backups order by 1 loop
      select q.created into v_created
      from ops.queue_run(v_env.id, 'retention', '{}'::jsonb, 'retention:' || p_day || ':' || v_env.id) q;
      v_count := v_count + v_created::integer;
    end loop;
  end if;
  return v_count;
end
$$;

-- A retention run deletes a backup's row once its files are gone from the store.
create function ops.delete_backup(p_run bigint, p_worker text, p_backup uuid) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs;
begin
  select * into v_run from ops.runs where id = p_run and status = 'running' and lease_owner = p_worker;
  if not found then
    raise exception 'run % is not held by worker %', p_run, p_worker using errcode = '55000';
  end if;
  delete from ops.backups where id = p_backup and environment_id = v_run.environment_id;
  if found then
    perform ops.audit(v_run.project_id, 'backup.delete', p_backup::text, jsonb_build_object('run', p_run, 'reason', 'retention'));
  end if;
  return found;
end
$$;

revoke execute on function ops.schedule_daily_runs(date), ops.delete_backup(bigint, text, uuid) from public, anon, authenticated, service_role;
grant execute on function ops.schedule_daily_runs(date), ops.delete_backup(bigint, text, uuid) to service_role;
