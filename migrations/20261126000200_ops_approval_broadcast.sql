-- Approvals change on the project's topic too (project:<uuid>, event 'approval'), so an editor's tree
-- shows a request for approval, and its decision, as they happen (no polling). One message per insert
-- and per status change; the payload names the approval, readers fetch it through the API. Run changes
-- and approval changes go out through one function.

-- Internal: one message on a project's topic, when anyone can receive it (ops.broadcast_wanted).
create function ops.broadcast_project(p_project uuid, p_event text, p_payload jsonb) returns void
language plpgsql security definer set search_path = '' as $$
begin
  if ops.broadcast_wanted('project:' || p_project) then
    perform realtime.send(p_payload, p_event, 'project:' || p_project, true);
  end if;
end
$$;
revoke execute on function ops.broadcast_project(uuid, text, jsonb) from public, anon, authenticated, service_role;

-- The same message as before (20261122000300), now through ops.broadcast_project.
create or replace function ops.broadcast_run_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform ops.broadcast_project(new.project_id, 'run', jsonb_build_object(
      'id', new.id, 'project_id', new.project_id, 'environment_id', new.environment_id, 'kind', new.kind,
      'status', new.status, 'attempts', new.attempts, 'error', left(new.error, 4000),
      'queued_at', ops.iso_time(new.queued_at), 'started_at', ops.iso_time(new.started_at),
      'finished_at', ops.iso_time(new.finished_at), 'cancel_requested', new.cancel_requested_at is not null,
      'last_seq', new.log_seq));
  return null;
end
$$;

create function ops.broadcast_approval_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform ops.broadcast_project(new.project_id, 'approval', jsonb_build_object(
      'id', new.id, 'project_id', new.project_id, 'environment_id', new.environment_id, 'kind', new.kind,
      'status', new.status));
  return null;
end
$$;
create trigger approvals_broadcast_insert after insert on ops.approvals
  for each row execute function ops.broadcast_approval_change();
create trigger approvals_broadcast_update after update of status on ops.approvals
  for each row when (old.status is distinct from new.status)
  execute function ops.broadcast_approval_change();
