-- A revoked session (sign-out, a replayed refresh token) must end the Realtime channels joined with its
-- tokens at once, not when the last token expires: the gateways already re-check a user's channels on
-- ops_membership, and a re-check verifies each channel's token again (which asks ops.sessions).
create function ops.notify_session_revoked() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform pg_notify('ops_membership', json_build_object('user_id', new.user_id, 'session_id', new.id)::text);
  return null;
end
$$;
create trigger sessions_revoked_notify after update of revoked_at on ops.sessions
  for each row when (old.revoked_at is null and new.revoked_at is not null)
  execute function ops.notify_session_revoked();
revoke execute on function ops.notify_session_revoked() from public, anon, authenticated, service_role;
