-- Backups as runs record them. A worker that holds a backup run records what it stored; Odoo.sh's
-- limit of 5 manual backups a day per environment is enforced here, where concurrent runs meet.

create function ops.record_backup(p_run bigint, p_worker text, p_kind text, p_location text, p_size bigint,
                                  p_sha256 text, p_manifest jsonb)
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs;
  v_id uuid;
begin
  select * into v_run from ops.runs where id = p_run and status = 'running' and lease_owner = p_worker;
  if not found then
    raise exception 'run % is not held by worker %', p_run, p_worker using errcode = '55000';
  end if;
  insert into ops.backups (project_id, environment_id, run_id, kind, location, size_bytes, sha256, manifest)
  values (v_run.project_id, v_run.environment_id, p_run, p_kind, p_location, p_size, p_sha256, p_manifest)
  returning id into v_id;
  return v_id;
end
$$;

-- How many manual backups the environment got since midnight UTC (the daily allowance is 5).
create function ops.manual_backups_today(p_environment uuid) returns integer
language sql stable security definer set search_path = '' as $$
  select count(*)::integer from ops.backups
  where environment_id = p_environment and kind = 'manual' and created_at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'
$$;

revoke execute on function ops.record_backup(bigint, text, text, text, bigint, text, jsonb), ops.manual_backups_today(uuid)
  from public, anon, authenticated, service_role;
grant execute on function ops.record_backup(bigint, text, text, text, bigint, text, jsonb), ops.manual_backups_today(uuid) to service_role;
