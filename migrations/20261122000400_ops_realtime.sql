-- Realtime Authorization: who may join which private Broadcast topic. Supabase Realtime (and the local
-- gateway, which does the same) authorizes a join by storing a probe message on the topic, then, as the
-- joining user with realtime.topic set to the topic, checking that the user can SELECT it. So the
-- policies on realtime.messages decide: a project's members may join project:<project uuid>, and the
-- topic run:<run id> of each run they can read. Nobody may send (there is no insert policy): the
-- database alone broadcasts on these topics (ops.broadcast_log_lines, ops.broadcast_run_change).
--
-- realtime.messages belongs to Supabase Realtime on a Supabase project and to the shims elsewhere: it is
-- never created, altered or owned here, only given policies (which Supabase lets the postgres role do).

-- A sub-topic (what realtime.topic() returns, e.g. 'run:42', 'project:<uuid>') the current user may
-- join. Anything malformed is simply refused, never an error: a policy that raises fails the join with
-- an error instead of a refusal, and the topic is whatever a client asked for.
create function ops.can_join_topic(p_topic text) returns boolean
language plpgsql stable set search_path = '' as $$
begin
  -- At most 18 digits: always within bigint. Lower-case uuids only, as ops.broadcast_run_change writes them.
  if p_topic ~ '^run:[1-9][0-9]{0,17}$' then
    return ops.can_read_run(substr(p_topic, 5)::bigint);
  elsif p_topic ~ '^project:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return ops.is_member(substr(p_topic, 9)::uuid);
  end if;
  return false;
end
$$;
revoke execute on function ops.can_join_topic(text) from public, anon;
grant execute on function ops.can_join_topic(text) to authenticated, service_role;

-- (select ...) around realtime.topic() and the check: evaluated once per query, not once per row.
-- The row's own topic must be the joined one too, so a user who sets realtime.topic cannot read the
-- messages of other topics through it.
drop policy if exists ops_members_receive_broadcasts on realtime.messages;
create policy ops_members_receive_broadcasts on realtime.messages for select to authenticated
  using (
    realtime.messages.extension = 'broadcast'
    and realtime.messages.topic = (select realtime.topic())
    and (select ops.can_join_topic((select realtime.topic())))
  );

-- What joining needs. Supabase grants all of it already (and the postgres role cannot grant everything
-- there), so grant only what is missing.
do $$
begin
  if not has_schema_privilege('authenticated', 'realtime', 'usage') then
    grant usage on schema realtime to authenticated;
  end if;
  if not has_table_privilege('authenticated', 'realtime.messages', 'select') then
    grant select on realtime.messages to authenticated;
  end if;
  if not has_function_privilege('authenticated', 'realtime.topic()', 'execute') then
    grant execute on function realtime.topic() to authenticated;
  end if;
  -- The SECURITY DEFINER ops functions broadcast as their owner, the role applying this migration.
  -- Without the right every log append and state change would fail, so refuse to migrate instead.
  if not has_function_privilege(current_user, 'realtime.send(jsonb, text, text, boolean)', 'execute') then
    raise exception 'role % cannot execute realtime.send(jsonb, text, text, boolean)', current_user
      using hint = 'Grant it (grant execute on function realtime.send(jsonb, text, text, boolean) to ' || current_user || ') and migrate again.';
  end if;
  -- Supabase's realtime.send runs as its caller (the shim's is SECURITY DEFINER): the owner of the ops
  -- functions then inserts into realtime.messages itself. realtime.send swallows errors, so a refused
  -- insert would silently drop every broadcast: check the privilege, and where row level security
  -- applies to this role (not a superuser, not BYPASSRLS, not the table's owner), let it insert broadcasts.
  if not (select p.prosecdef from pg_proc p where p.oid = 'realtime.send(jsonb, text, text, boolean)'::regprocedure) then
    if not has_table_privilege(current_user, 'realtime.messages', 'insert') then
      raise exception 'role % cannot insert into realtime.messages, which realtime.send needs', current_user
        using hint = 'Grant it (grant insert on realtime.messages to ' || current_user || ') and migrate again.';
    end if;
    if not exists (select 1 from pg_roles r, pg_class c
                   where r.rolname = current_user and c.oid = 'realtime.messages'::regclass
                     and (r.rolsuper or r.rolbypassrls or pg_has_role(r.oid, c.relowner, 'usage'))) then
      execute 'drop policy if exists ops_functions_broadcast on realtime.messages';
      execute format('create policy ops_functions_broadcast on realtime.messages for insert to %I with check (extension = %L)',
                     current_user, 'broadcast');
    end if;
  end if;
end
$$;
