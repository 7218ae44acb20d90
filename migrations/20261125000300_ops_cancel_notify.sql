-- A cancel request reaches the run's worker at once (it LISTENs on ops_cancel), not at its next
-- heartbeat: a long restore or clone stops within milliseconds of "Cancel run".
create function ops.notify_cancel() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform pg_notify('ops_cancel', new.id::text);
  return null;
end
$$;
create trigger runs_notify_cancel after update of cancel_requested_at on ops.runs
  for each row when (old.cancel_requested_at is null and new.cancel_requested_at is not null and new.status = 'running')
  execute function ops.notify_cancel();
revoke execute on function ops.notify_cancel() from public, anon, authenticated, service_role;
