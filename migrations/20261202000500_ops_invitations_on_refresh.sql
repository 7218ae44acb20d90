-- Invitations, two corrections (review of the sign-in migration):
-- * someone already signed in who is invited to another project joins it at their next refresh: a
--   session that keeps refreshing never signs in again, so accepting only at sign-in left them out;
-- * an invitation counts only while whoever made it is still an admin of the project.
-- The functions' earlier bodies are in 20261202000100_ops_sign_in.sql.

create or replace function ops.accept_invitations(p_user uuid, p_login text, p_email text) returns jsonb
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


create or replace function ops.may_sign_in(p_user uuid, p_login text, p_email text) returns boolean
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


create or replace function ops.refresh_session(p_session uuid, p_generation integer, p_lifetime interval, p_grace interval) returns jsonb
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

