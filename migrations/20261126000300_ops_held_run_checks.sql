-- The worker-only functions written before ops.held_run (20261126000100) start from it too, so "the run
-- this worker holds" is checked in one place. Same signatures, same errors.
create or replace function ops.record_backup(p_run bigint, p_worker text, p_kind text, p_location text, p_size bigint,
                                             p_sha256 text, p_manifest jsonb)
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs := ops.held_run(p_run, p_worker);
  v_id uuid;
begin
  insert into ops.backups (project_id, environment_id, run_id, kind, location, size_bytes, sha256, manifest)
  values (v_run.project_id, v_run.environment_id, p_run, p_kind, p_location, p_size, p_sha256, p_manifest)
  returning id into v_id;
  return v_id;
end
$$;

create or replace function ops.delete_backup(p_run bigint, p_worker text, p_backup uuid) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs := ops.held_run(p_run, p_worker);
begin
  delete from ops.backups where id = p_backup and environment_id = v_run.environment_id;
  if found then
    perform ops.audit(v_run.project_id, 'backup.delete', p_backup::text, jsonb_build_object('run', p_run, 'reason', 'retention'));
  end if;
  return found;
end
$$;
