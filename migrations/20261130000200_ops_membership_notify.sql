-- Realtime authorizes a channel when it is joined (and on a new token), so without this a member
-- removed from a project kept receiving its broadcasts until their token expired. Every membership
-- change that can take a right away (a removal, a role change, a project's deletion, which cascades
-- here) tells the gateways, which LISTEN on ops_membership and re-check that user's open channels
-- against the realtime.messages policies. Adding a member takes nothing away, so it is not announced.
-- NOTIFY takes a database-wide lock from the NOTIFY to the commit: fine for changes this rare.
create function ops.notify_membership_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and old.role = new.role and old.user_id = new.user_id and old.project_id = new.project_id then
    return null; -- a display name: nobody's rights change
  end if;
  perform pg_notify('ops_membership', json_build_object('project_id', old.project_id, 'user_id', old.user_id)::text);
  return null;
end
$$;
create trigger project_members_notify after delete or update of role, user_id, project_id on ops.project_members
  for each row execute function ops.notify_membership_change();
revoke execute on function ops.notify_membership_change() from public, anon, authenticated, service_role;
