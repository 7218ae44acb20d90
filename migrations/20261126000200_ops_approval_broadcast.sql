-- Approvals change on the project's topic too (project:<uuid>, event 'approval'), so an editor's tree
-- shows a request for approval, and its decision, as they happen (no polling). One message per insert
-- and per status change; the payload names the approval, readers fetch it through the API.
create function ops.broadcast_approval_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if not ops.broadcast_wanted('project:' || new.project_id) then
    return null;
  end if;
  perform realtime.send(jsonb_build_object(
      'id', new.id, 'project_id', new.project_id, 'environment_id', new.environment_id, 'kind', new.kind,
      'status', new.status),
    'approval', 'project:' || new.project_id, true);
  return null;
end
$$;
create trigger approvals_broadcast_insert after insert on ops.approvals
  for each row execute function ops.broadcast_approval_change();
create trigger approvals_broadcast_update after update of status on ops.approvals
  for each row when (old.status is distinct from new.status)
  execute function ops.broadcast_approval_change();
