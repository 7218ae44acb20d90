-- A project's backup stores (issue 16). The operator declares stores in the registry (backupStores:
-- local directories and S3-compatible object storage) and binds them to projects; the control plane
-- holds their names only (ops.infrastructure, kind 'backup_store'). A project admin picks, among the
-- stores bound to the project, the one its backups are written to and optionally a second one every
-- backup is copied to in the same run. "default" is the server's own directory (--backup-dir), built in
-- and bound to every project, as the demo's database server is.
alter table ops.projects
  add column backup_store text not null default 'default'
    constraint projects_backup_store_format check (backup_store ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  add column backup_copy text
    constraint projects_backup_copy_format check (backup_copy ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  add constraint projects_backup_copy_other check (backup_copy is distinct from backup_store);

-- For every writer (the API checks first, to say what exists): only stores the operator bound to the
-- project. Who may write the columns at all is projects_update's business (project admins).
create function ops.projects_guard_backup_stores() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_name text;
begin
  foreach v_name in array array[
      case when tg_op = 'INSERT' or new.backup_store is distinct from old.backup_store then new.backup_store end,
      case when tg_op = 'INSERT' or new.backup_copy is distinct from old.backup_copy then new.backup_copy end] loop
    continue when v_name is null or v_name = 'default';
    -- By slug, not ops.infra_bound: before an insert the project's row is not there to join.
    if not exists (select 1 from ops.infrastructure i where i.kind = 'backup_store' and i.name = v_name
                   and (new.slug = any (i.projects) or '*' = any (i.projects))) then
      raise exception 'the backup store "%" is not available to project %', v_name, new.slug using errcode = '42501',
        hint = 'The operator declares backup stores in the registry (backupStores:) and binds them to projects; odooops infra list PROJECT shows them.';
    end if;
  end loop;
  return new;
end
$$;
create trigger projects_guard_backup_stores before insert or update of backup_store, backup_copy on ops.projects
  for each row execute function ops.projects_guard_backup_stores();

grant update (backup_store, backup_copy) on ops.projects to authenticated;

-- The stores that hold the whole backup, the one it was written to first. A backup is recorded only
-- once every store the project had configured holds all of it; reads take the first that has it.
alter table ops.backups
  add column stores text[] not null default '{default}'
    constraint backups_stores_names check (cardinality(stores) between 1 and 8
      and array_to_string(stores, ',') ~ '^[a-z0-9][a-z0-9._-]{0,62}(,[a-z0-9][a-z0-9._-]{0,62})*$');

drop function ops.record_backup(bigint, text, text, text, bigint, text, jsonb);
create function ops.record_backup(p_run bigint, p_worker text, p_kind text, p_location text, p_size bigint,
                                  p_sha256 text, p_manifest jsonb, p_stores text[] default '{default}')
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs := ops.held_run(p_run, p_worker);
  v_id uuid;
begin
  insert into ops.backups (project_id, environment_id, run_id, kind, location, size_bytes, sha256, manifest, stores)
  values (v_run.project_id, v_run.environment_id, p_run, p_kind, p_location, p_size, p_sha256, p_manifest, p_stores)
  returning id into v_id;
  return v_id;
end
$$;

revoke execute on function ops.projects_guard_backup_stores(), ops.record_backup(bigint, text, text, text, bigint, text, jsonb, text[])
  from public, anon, authenticated, service_role;
grant execute on function ops.record_backup(bigint, text, text, text, bigint, text, jsonb, text[]) to service_role;
