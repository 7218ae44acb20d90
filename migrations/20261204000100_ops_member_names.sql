-- What to call a member who has no display name, no name and no GitHub login (someone who signed in with
-- an email only, through Supabase Auth): the verified email of their sign-in. The email column itself
-- stays ungranted; this answers only for people who share a project with the caller, and only when they
-- have no other name, so it reveals no more than an editor needs to say who did what.
create function ops.unnamed_member_email(p_user uuid) returns text
language sql stable security definer set search_path = '' as $$
  select u.email from ops.users u
  where u.id = p_user and u.name is null and u.github_login is null
    and (u.id = (select auth.uid()) or ops.shares_project(u.id))
$$;
revoke execute on function ops.unnamed_member_email(uuid) from public, anon, authenticated, service_role;
grant execute on function ops.unnamed_member_email(uuid) to authenticated, service_role;
