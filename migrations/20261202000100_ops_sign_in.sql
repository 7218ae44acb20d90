-- Teams (issue 15): people sign in with GitHub (or, on a Supabase control plane, Supabase Auth's GitHub
-- provider); project admins invite them by GitHub login or email; an invitation becomes a membership
-- at the person's first sign-in. Before, a second person joined by someone pasting a signed token.
--
-- A person is known by their GitHub account id, never by their login: logins can be renamed and then
-- taken by someone else. Sign-in runs before anyone is authenticated, so it is done by the server
-- as the service through the SECURITY DEFINER functions below (fixed search_path, audited); nobody
-- writes these tables directly.

create table ops.users (
  -- On a Supabase control plane, the auth.users id (the JWT's sub); otherwise OdooOps's own.
  id uuid primary key default gen_random_uuid(),
  name text constraint users_name_length check (char_length(name) <= 200),
  github_id bigint unique constraint users_github_id_positive check (github_id > 0),
  github_login text constraint users_github_login_format check (github_login ~ '^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$'),
  -- A verified email only (GitHub's primary verified one, or Supabase's verified identity email).
  email text constraint users_email_length check (char_length(email) <= 320),
  created_at timestamptz not null default now(),
  last_sign_in_at timestamptz
);
-- Not unique: a renamed login can be someone else's now, while the old row still says it.
create index users_github_login on ops.users (lower(github_login));

-- A sign-in. Access tokens (JWTs) carry its id as `sid`; refresh tokens are <id>.<generation>.<HMAC>,
-- so nothing secret is stored here: the generation is what a refresh must present, and it moves on
-- at every refresh (rotation).
create table ops.sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references ops.users (id) on delete cascade,
  generation integer not null default 1,
  created_at timestamptz not null default now(),
  rotated_at timestamptz,
  -- The refresh token's lifetime, sliding: each refresh pushes it out again.
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_reason text constraint sessions_revoked_reason check (revoked_reason in ('sign_out', 'replay')),
  user_agent text constraint sessions_user_agent_length check (char_length(user_agent) <= 300)
);
create index sessions_user on ops.sessions (user_id);

create table ops.invitations (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references ops.projects (id) on delete cascade,
  github_login text constraint invitations_github_login_format check (github_login ~ '^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$'),
  email text constraint invitations_email_format check (char_length(email) <= 320 and email ~ '^[^@\s]+@[^@\s]+$'),
  role ops.member_role not null,
  invited_by uuid not null default auth.uid(),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '14 days',
  accepted_by uuid,
  accepted_at timestamptz,
  constraint invitations_one_target check ((github_login is null) <> (email is null)),
  constraint invitations_expiry_bounded check (expires_at <= created_at + interval '90 days')
);
-- One pending invitation per project and person: inviting again replaces it (the API deletes the old one).
create unique index invitations_pending_login on ops.invitations (project_id, lower(github_login))
  where accepted_at is null and github_login is not null;
create unique index invitations_pending_email on ops.invitations (project_id, lower(email))
  where accepted_at is null and email is not null;
create index invitations_match_login on ops.invitations (lower(github_login)) where accepted_at is null;
create index invitations_match_email on ops.invitations (lower(email)) where accepted_at is null;
create trigger invitations_audit after insert or update or delete on ops.invitations
  for each row execute function ops.audit_row_change();

-- Who sees what ----------------------------------------------------------------------------------
alter table ops.users enable row level security;
alter table ops.sessions enable row level security;
alter table ops.invitations enable row level security;

-- Whether the caller and p_user are members of one project (SECURITY DEFINER: no policy recursion).
create function ops.shares_project(p_user uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from ops.project_members mine join ops.project_members theirs on theirs.project_id = mine.project_id
    where mine.user_id = auth.uid() and theirs.user_id = p_user)
$$;

create policy users_select on ops.users for select to authenticated
  using (id = (select auth.uid()) or ops.shares_project(id));
create policy sessions_select on ops.sessions for select to authenticated
  using (user_id = (select auth.uid()));
create policy invitations_select on ops.invitations for select to authenticated
  using (ops.member_role(project_id) = 'admin');
create policy invitations_insert on ops.invitations for insert to authenticated
  with check (ops.member_role(project_id) = 'admin' and invited_by = (select auth.uid()));
create policy invitations_delete on ops.invitations for delete to authenticated
  using (ops.member_role(project_id) = 'admin');

-- Sign-in ----------------------------------------------------------------------------------------
-- Makes p_user a member of every project with a pending invitation for p_login (any case) or the
-- verified p_email, and marks those invitations accepted. Where two invitations name one project,
-- the stronger role wins; an existing membership is kept as it is. Returns the projects joined.
create function ops.accept_invitations(p_user uuid, p_login text, p_email text) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  v_inv record;
  v_joined jsonb := '[]'::jsonb;
  v_added integer;
begin
  for v_inv in
    select i.*, p.slug from ops.invitations i join ops.projects p on p.id = i.project_id
    where i.accepted_at is null and i.expires_at > now()
      -- Only while whoever invited is still an admin of the project: a demoted or removed admin's
      -- pending invitations give nothing (else they could invite a second account of theirs first).
      and exists (select 1 from ops.project_members m where m.project_id = i.project_id and m.user_id = i.invited_by and m.role = 'admin')
      and ((p_login is not null and lower(i.github_login) = lower(p_login))
           or (p_email is not null and lower(i.email) = lower(p_email)))
    order by i.project_id, i.role desc, i.created_at
    for update of i
  loop
    insert into ops.project_members (project_id, user_id, role, added_by)
    values (v_inv.project_id, p_user, v_inv.role, v_inv.invited_by)
    on conflict (project_id, user_id) do nothing;
    get diagnostics v_added = row_count;
    if v_added > 0 then
      v_joined := v_joined || jsonb_build_array(jsonb_build_object('project', v_inv.slug, 'role', v_inv.role));
    end if;
    update ops.invitations set accepted_by = p_user, accepted_at = now() where id = v_inv.id;
  end loop;
  return v_joined;
end
$$;

-- Whether a person may sign in: a pending invitation, or they are someone here already (a member of
-- a project, or an instance admin). Strangers get no user row: accounts exist only by invitation.
create function ops.may_sign_in(p_user uuid, p_login text, p_email text) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
      select 1 from ops.invitations i
      where i.accepted_at is null and i.expires_at > now()
        and exists (select 1 from ops.project_members m where m.project_id = i.project_id and m.user_id = i.invited_by and m.role = 'admin')
        and ((p_login is not null and lower(i.github_login) = lower(p_login))
             or (p_email is not null and lower(i.email) = lower(p_email))))
    or exists (select 1 from ops.project_members m where m.user_id = p_user)
    or exists (select 1 from ops.instance_admins a where a.user_id = p_user)
$$;

create function ops.user_json(p_user ops.users) returns jsonb
language sql immutable set search_path = '' as $$
  select jsonb_build_object('id', p_user.id, 'name', p_user.name, 'githubLogin', p_user.github_login, 'email', p_user.email)
$$;

-- A person proved by a GitHub token (the server asked GitHub who it belongs to). Returns
-- {refused: true} for a stranger (audited), else {user, session: {id, generation}, joined}.
create function ops.sign_in_github(p_github_id bigint, p_login text, p_name text, p_email text,
                                   p_user_agent text, p_lifetime interval) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  v_user ops.users;
  v_existing uuid;
  v_joined jsonb;
  v_session ops.sessions;
begin
  select u.id into v_existing from ops.users u where u.github_id = p_github_id;
  if not ops.may_sign_in(v_existing, p_login, p_email) then
    insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
    values (v_existing, 'service_role', null, 'sign_in.refused', 'github:' || p_github_id,
            jsonb_strip_nulls(jsonb_build_object('github_login', p_login, 'reason', 'no invitation and no membership')));
    return jsonb_build_object('refused', true);
  end if;
  insert into ops.users (github_id, github_login, name, email, last_sign_in_at)
  values (p_github_id, p_login, p_name, p_email, now())
  on conflict (github_id) do update
    set github_login = excluded.github_login, name = excluded.name, email = excluded.email, last_sign_in_at = now()
  returning * into v_user;
  v_joined := ops.accept_invitations(v_user.id, p_login, p_email);
  insert into ops.sessions (user_id, expires_at, user_agent)
  values (v_user.id, now() + p_lifetime, left(p_user_agent, 300))
  returning * into v_session;
  insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
  values (v_user.id, 'authenticated', null, 'sessions.sign_in', 'sessions:' || v_session.id,
          jsonb_build_object('method', 'github', 'github_login', p_login, 'joined', v_joined));
  return jsonb_build_object('user', ops.user_json(v_user),
                            'session', jsonb_build_object('id', v_session.id, 'generation', v_session.generation),
                            'joined', v_joined);
end
$$;

-- A refresh presenting generation p_generation of session p_session (its HMAC already checked):
--   the current generation  → rotated: the next generation, lifetime pushed out;
--   the previous one, within p_grace of the rotation (two processes refreshing at once) → current;
--   anything older (or the previous after the grace) → replayed: someone holds a stolen copy, so the
--   session is revoked for both of them (audited);
--   revoked, expired or unknown → refused as such.
create function ops.refresh_session(p_session uuid, p_generation integer, p_lifetime interval, p_grace interval) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  v_s ops.sessions;
  v_user ops.users;
  v_joined jsonb;
begin
  select * into v_s from ops.sessions s where s.id = p_session for update;
  if not found then
    return jsonb_build_object('status', 'unknown');
  end if;
  if v_s.revoked_at is not null then
    return jsonb_build_object('status', 'revoked', 'reason', v_s.revoked_reason);
  end if;
  if v_s.expires_at <= now() then
    return jsonb_build_object('status', 'expired');
  end if;
  select * into v_user from ops.users u where u.id = v_s.user_id;
  if p_generation = v_s.generation then
    update ops.sessions set generation = generation + 1, rotated_at = now(), expires_at = now() + p_lifetime
    where id = p_session returning * into v_s;
    -- Someone invited to another project while signed in joins it at their next refresh (within the
    -- hour), not only when they sign in again (which a session that keeps refreshing never does).
    v_joined := ops.accept_invitations(v_user.id, v_user.github_login, v_user.email);
    if v_joined <> '[]'::jsonb then
      insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
      values (v_user.id, 'authenticated', null, 'sessions.refresh_joined', 'sessions:' || p_session, jsonb_build_object('joined', v_joined));
    end if;
    return jsonb_build_object('status', 'rotated', 'generation', v_s.generation, 'user', ops.user_json(v_user), 'joined', v_joined);
  end if;
  if p_generation = v_s.generation - 1 and v_s.rotated_at > now() - p_grace then
    return jsonb_build_object('status', 'current', 'generation', v_s.generation, 'user', ops.user_json(v_user));
  end if;
  update ops.sessions set revoked_at = now(), revoked_reason = 'replay' where id = p_session;
  insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
  values (v_s.user_id, 'service_role', null, 'sessions.replay', 'sessions:' || p_session,
          jsonb_build_object('presented_generation', p_generation, 'current_generation', v_s.generation));
  return jsonb_build_object('status', 'replayed');
end
$$;

-- Ends a session (sign-out): its access and refresh tokens stop working. Its own user may end it; so
-- may the service. False when there was nothing to end.
create function ops.end_session(p_session uuid) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  v_user uuid;
begin
  update ops.sessions s set revoked_at = now(), revoked_reason = 'sign_out'
  where s.id = p_session and s.revoked_at is null
    and (s.user_id = auth.uid() or coalesce(auth.role(), '') = 'service_role')
  returning s.user_id into v_user;
  if v_user is null then
    return false;
  end if;
  insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
  values (v_user, coalesce(auth.role(), session_user::text), null, 'sessions.sign_out', 'sessions:' || p_session, '{}'::jsonb);
  return true;
end
$$;

-- Supabase Auth: a person whose Supabase JWT the server verified (p_user, its sub). Who they are on
-- GitHub is read from auth.identities, which only GoTrue writes (from GitHub's answers), NEVER from
-- user_metadata, which Supabase users edit themselves (anyone could claim someone else's login).
-- Returns {refused: reason} or {user, joined}.
create function ops.accept_supabase_identity(p_user uuid) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  v_github_id bigint;
  v_login text;
  v_name text;
  v_email text;
  v_user ops.users;
  v_joined jsonb;
begin
  if to_regclass('auth.identities') is null then
    return jsonb_build_object('refused', 'no_identities');
  end if;
  select (i.provider_id)::bigint, i.identity_data ->> 'user_name',
         coalesce(nullif(i.identity_data ->> 'full_name', ''), nullif(i.identity_data ->> 'name', '')),
         case when i.identity_data ->> 'email_verified' = 'true' then i.identity_data ->> 'email' end
    into v_github_id, v_login, v_name, v_email
  from auth.identities i
  where i.user_id = p_user and i.provider = 'github' and i.provider_id ~ '^[0-9]{1,18}$'
  order by i.created_at desc nulls last
  limit 1;
  if v_github_id is null then
    return jsonb_build_object('refused', 'no_github_identity');
  end if;
  if v_login !~ '^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$' then
    v_login := null;
  end if;
  if exists (select 1 from ops.users u where u.github_id = v_github_id and u.id <> p_user) then
    return jsonb_build_object('refused', 'github_account_taken', 'github_login', v_login);
  end if;
  if not ops.may_sign_in(p_user, v_login, v_email) then
    insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
    values (p_user, 'authenticated', null, 'sign_in.refused', 'github:' || v_github_id,
            jsonb_strip_nulls(jsonb_build_object('github_login', v_login, 'reason', 'no invitation and no membership')));
    return jsonb_build_object('refused', 'no_invitation', 'github_login', v_login);
  end if;
  insert into ops.users (id, github_id, github_login, name, email, last_sign_in_at)
  values (p_user, v_github_id, v_login, left(v_name, 200), left(v_email, 320), now())
  on conflict (id) do update
    set github_id = excluded.github_id, github_login = excluded.github_login, name = excluded.name,
        email = excluded.email, last_sign_in_at = now()
  returning * into v_user;
  v_joined := ops.accept_invitations(v_user.id, v_login, v_email);
  insert into ops.audit_log (actor, actor_role, project_id, action, target, details)
  values (v_user.id, 'authenticated', null, 'sessions.sign_in', 'users:' || v_user.id,
          jsonb_build_object('method', 'supabase', 'github_login', v_login, 'joined', v_joined));
  return jsonb_build_object('user', ops.user_json(v_user), 'joined', v_joined);
end
$$;

-- Grants -----------------------------------------------------------------------------------------
revoke all on ops.users, ops.sessions, ops.invitations from public, anon, authenticated, service_role;
-- Names and logins only: people who share a project need not see each other's email addresses.
grant select (id, name, github_login, created_at, last_sign_in_at) on ops.users to authenticated;
grant select on ops.users to service_role;
grant select (id, user_id, generation, created_at, rotated_at, expires_at, revoked_at, revoked_reason, user_agent)
  on ops.sessions to authenticated;
grant select on ops.sessions to service_role;
grant select, delete on ops.invitations to authenticated;
grant insert (project_id, github_login, email, role) on ops.invitations to authenticated;
grant select, insert, delete on ops.invitations to service_role;

revoke execute on function ops.shares_project(uuid), ops.accept_invitations(uuid, text, text), ops.may_sign_in(uuid, text, text),
  ops.user_json(ops.users), ops.sign_in_github(bigint, text, text, text, text, interval),
  ops.refresh_session(uuid, integer, interval, interval), ops.end_session(uuid), ops.accept_supabase_identity(uuid)
  from public, anon, authenticated, service_role;
grant execute on function ops.shares_project(uuid) to authenticated, service_role;
grant execute on function ops.end_session(uuid) to authenticated, service_role;
grant execute on function ops.sign_in_github(bigint, text, text, text, text, interval),
  ops.refresh_session(uuid, integer, interval, interval), ops.accept_supabase_identity(uuid) to service_role;

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
