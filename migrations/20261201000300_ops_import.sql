-- Imports (issue 14): an uploaded Odoo export becomes a backup of kind 'import' of the environment it
-- is imported into, then is restored like one. Into production it needs a second member's approval,
-- bound to the upload (its id and SHA-256 are the run's params, compared whole), used once.

alter table ops.backups drop constraint backups_kind;
alter table ops.backups add constraint backups_kind check (kind in ('daily', 'manual', 'pre-deploy', 'clone', 'import'));

-- A trigger of its own beside runs_require_approval (restores, deploys), with the same rules.
create function ops.runs_require_import_approval() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_stage ops.stage;
  v_approval ops.approvals;
begin
  select e.stage into v_stage from ops.environments e where e.id = new.environment_id;
  if v_stage is distinct from 'production' or new.kind <> 'import' then
    return new;
  end if;
  if new.approval_id is null then
    raise exception 'an import into production needs an approval from another member'
      using errcode = '42501', hint = 'Request one for this upload (odooops approval request PROJECT ENV import --params ''{"upload":…,"sha256":…}''), have a second admin approve it, then queue the import with --approval.';
  end if;
  select * into v_approval from ops.approvals a where a.id = new.approval_id for update;
  if not found or v_approval.environment_id <> new.environment_id or v_approval.kind <> new.kind then
    raise exception 'approval % is not for an import into this environment', new.approval_id using errcode = '42501';
  end if;
  if v_approval.status <> 'approved' then
    raise exception 'approval % is %, not approved', new.approval_id, v_approval.status using errcode = '42501';
  end if;
  if v_approval.decided_by is not distinct from new.requested_by then
    raise exception 'approval % was given by the member who queues the import; a second person must approve', new.approval_id using errcode = '42501';
  end if;
  if v_approval.used_by_run_id is not null then
    raise exception 'approval % was already used by run %', new.approval_id, v_approval.used_by_run_id using errcode = '42501';
  end if;
  if v_approval.params <> new.params then
    raise exception 'approval % was given for another upload than this import', new.approval_id using errcode = '42501';
  end if;
  if v_approval.decided_at < now() - interval '24 hours' then
    raise exception 'approval % expired (approvals are valid for 24 hours)', new.approval_id using errcode = '42501';
  end if;
  update ops.approvals set used_by_run_id = new.id where id = new.approval_id;
  return new;
end
$$;
revoke execute on function ops.runs_require_import_approval() from public, anon, authenticated, service_role;
create trigger runs_require_import_approval before insert on ops.runs
  for each row execute function ops.runs_require_import_approval();
