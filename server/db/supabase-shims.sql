-- Supabase-compatible shims for a control plane that is not a Supabase project (the embedded default,
-- or any plain Postgres given with --database-url), so the migrations see the very same roles, auth
-- helpers and realtime functions on both backends.
--
-- Each object is created only where it is missing AND this role may create it, each grant given only
-- where it is missing AND this role may give it. On a Supabase project everything here exists already,
-- and the postgres role there may do neither: it has no CREATE on schema realtime and does not own
-- realtime.messages (supabase_realtime_admin does). So on Supabase this file changes nothing. Where
-- something the server needs is missing and this role may not make it, the server stops with an error
-- naming the object and what the operator can do; what only the shims' own extras need (anon's
-- rights, authenticated's INSERT on realtime.messages) is left alone.

-- The roles the policies are written for, and the server's own login able to SET ROLE to the two it
-- acts as (authenticated for users, service_role for itself), as PostgREST's authenticator can.
do $$
declare
  v_me pg_roles%rowtype;
  r text;
begin
  select * into v_me from pg_roles where rolname = current_user;
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      -- Only a superuser may create a BYPASSRLS role (PostgreSQL 15).
      if not (v_me.rolsuper or (v_me.rolcreaterole and r <> 'service_role')) then
        raise exception 'the role % is missing, and % may not create it', r, current_user
          using hint = format('As a superuser run: create role %I nologin noinherit%s; grant %I to %I; then start OdooOps again.',
                              r, case when r = 'service_role' then ' bypassrls' else '' end, r, current_user);
      end if;
      execute format('create role %I nologin noinherit%s', r, case when r = 'service_role' then ' bypassrls' else '' end);
    end if;
    if not pg_has_role(current_user, r, 'member') then
      if v_me.rolsuper or pg_has_role(current_user, r, 'member with admin option')
         or (v_me.rolcreaterole and current_setting('server_version_num')::int < 160000) then
        execute format('grant %I to %I', r, current_user);
      elsif r <> 'anon' then
        raise exception 'the role % is not a member of %, which the server switches to for every request', current_user, r
          using hint = format('As a superuser run: grant %I to %I; then start OdooOps again.', r, current_user);
      end if;
    end if;
  end loop;
end
$$;

do $$
declare
  v_schema text;
begin
  foreach v_schema in array array['auth', 'realtime'] loop
    if to_regnamespace(v_schema) is null then
      if not has_database_privilege(current_database(), 'create') then
        raise exception 'the schema % is missing, and % may not create schemas in database %', v_schema, current_user, current_database()
          using hint = format('As a superuser run: create schema %I; (or grant create on database %I to %I); then start OdooOps again.',
                              v_schema, current_database(), current_user);
      end if;
      execute format('create schema %I', v_schema);
    end if;
  end loop;
end
$$;

-- Same bodies as Supabase's: claims come from the transaction-local setting request.jwt.claims.
-- nullif(..., '') because a setting once set reads '' (not NULL) outside its transaction.
do $$
declare
  v_missing text[] := array(select f from unnest(array['auth.jwt()', 'auth.uid()', 'auth.role()']) f where to_regprocedure(f) is null);
begin
  if cardinality(v_missing) > 0 and not has_schema_privilege('auth', 'create') then
    raise exception '% missing from schema auth, and % may not create functions there', array_to_string(v_missing, ', '), current_user
      using hint = format('Create them as the owner of schema auth (Supabase''s bodies read request.jwt.claims), or grant create on schema auth to %I; then start OdooOps again.', current_user);
  end if;
  if 'auth.jwt()' = any (v_missing) then
    create function auth.jwt() returns jsonb language sql stable as
      $f$ select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                          nullif(current_setting('request.jwt.claims', true), ''))::jsonb $f$;
  end if;
  if 'auth.uid()' = any (v_missing) then
    create function auth.uid() returns uuid language sql stable as
      $f$ select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $f$;
  end if;
  if 'auth.role()' = any (v_missing) then
    create function auth.role() returns text language sql stable as
      $f$ select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text $f$;
  end if;
end
$$;

-- Realtime: Broadcast from Database. Supabase stores broadcasts in realtime.messages and its Realtime
-- service reads them; here the row is stored the same way and a NOTIFY tells the local gateway.
do $$
declare
  v_owner oid;
  v_rls boolean;
begin
  if to_regclass('realtime.messages') is null then
    if not has_schema_privilege('realtime', 'create') then
      raise exception 'the table realtime.messages is missing, and % may not create it (no CREATE on schema realtime)', current_user
        using hint = 'On Supabase, Realtime creates it: check that the project''s Realtime is enabled and running. Elsewhere, grant create on schema realtime to '
                     || quote_ident(current_user) || ' as its owner; then start OdooOps again.';
    end if;
    create table realtime.messages (
      id bigint generated always as identity primary key,
      topic text not null,
      extension text not null default 'broadcast',
      payload jsonb,
      event text,
      private boolean not null default true,
      updated_at timestamptz not null default now(),
      inserted_at timestamptz not null default now()
    );
  end if;
  -- Without row level security the join policies decide nothing: anyone with SELECT would read every
  -- topic. Only the owner may turn it on; on Supabase it is on already.
  select c.relowner, c.relrowsecurity into v_owner, v_rls from pg_class c where c.oid = 'realtime.messages'::regclass;
  if not v_rls then
    if not pg_has_role(current_user, v_owner, 'usage') then
      raise exception 'row level security is off on realtime.messages, which belongs to %, not %', pg_get_userbyid(v_owner), current_user
        using hint = format('As %I or a superuser run: alter table realtime.messages enable row level security; then start OdooOps again.', pg_get_userbyid(v_owner));
    end if;
    alter table realtime.messages enable row level security;
  end if;
end
$$;

do $$
begin
  if to_regprocedure('realtime.topic()') is null then
    if not has_schema_privilege('realtime', 'create') then
      raise exception 'the function realtime.topic() is missing, and % may not create it (no CREATE on schema realtime)', current_user
        using hint = 'On Supabase, Realtime creates it: check that the project''s Realtime is enabled and running. Elsewhere, grant create on schema realtime to '
                     || quote_ident(current_user) || ' as its owner; then start OdooOps again.';
    end if;
    create function realtime.topic() returns text language sql stable as
      $f$ select nullif(current_setting('realtime.topic', true), '')::text $f$;
  end if;
  if to_regprocedure('realtime.send(jsonb,text,text,boolean)') is null then
    if not has_schema_privilege('realtime', 'create') then
      raise exception 'the function realtime.send(jsonb, text, text, boolean) is missing, and % may not create it (no CREATE on schema realtime)', current_user
        using hint = 'On Supabase, Realtime creates it: check that the project''s Realtime is enabled and running. Elsewhere, grant create on schema realtime to '
                     || quote_ident(current_user) || ' as its owner; then start OdooOps again.';
    end if;
    -- The topics someone is subscribed to through a local gateway (one row per gateway and topic;
    -- topic '*' records every broadcast). Without Supabase's Realtime, a broadcast nobody receives is
    -- worth nothing, so realtime.send stores and NOTIFYs only for those topics: the worker's
    -- transactions stay small, and a NOTIFY, which holds a database-wide lock until its commit is
    -- flushed, is only paid while someone watches.
    create table if not exists realtime.odooops_gateway_topics (
      topic text not null,
      gateway text not null,
      since timestamptz not null default now(),
      primary key (topic, gateway)
    );
    create function realtime.send(payload jsonb, event text, topic text, private boolean default true)
    returns void language plpgsql security definer set search_path = '' as
    $f$
    declare
      v_id bigint;
    begin
      if not exists (select 1 from realtime.odooops_gateway_topics g where g.topic in ($3, '*')) then
        return;
      end if;
      insert into realtime.messages (payload, event, topic, private, extension)
      values (payload, event, topic, private, 'broadcast')
      returning id into v_id;
      -- Only the id and topic travel (NOTIFY payloads are capped at 8000 bytes). $3 is the topic
      -- parameter (the bare name would clash with the column).
      perform pg_notify('realtime_messages', json_build_object('id', v_id, 'topic', $3)::text);
    exception when others then
      -- As on Supabase, a failed broadcast must never fail the caller's transaction.
      raise warning 'realtime.send failed: %', sqlerrm;
    end
    $f$;
  end if;
end
$$;

-- The rights the API roles need: given explicitly on objects this role owns (as they always were),
-- elsewhere only where missing. A right this role may not give (Supabase's objects belong to platform
-- roles) fails the start only where the server needs it (`needed`): authenticated, the users, reads
-- claims through auth.* and joins topics through realtime.messages and realtime.topic().
do $$
declare
  v_grant record;
  v_owner oid;
  v_role text;
  v_skip boolean;
  v_may boolean;
begin
  for v_grant in
    select * from (values
      ('schema', 'auth', 'usage', array['anon', 'authenticated', 'service_role'], array['authenticated']),
      ('function', 'auth.jwt()', 'execute', array['anon', 'authenticated', 'service_role'], array['authenticated']),
      ('function', 'auth.uid()', 'execute', array['anon', 'authenticated', 'service_role'], array['authenticated']),
      ('function', 'auth.role()', 'execute', array['anon', 'authenticated', 'service_role'], array['authenticated']),
      ('schema', 'realtime', 'usage', array['anon', 'authenticated', 'service_role'], array['authenticated']),
      ('table', 'realtime.messages', 'select', array['authenticated', 'service_role'], array['authenticated']),
      ('table', 'realtime.messages', 'insert', array['authenticated', 'service_role'], array[]::text[]),
      ('function', 'realtime.topic()', 'execute', array['anon', 'authenticated', 'service_role'], array['authenticated']),
      ('function', 'realtime.send(jsonb,text,text,boolean)', 'execute', array['authenticated', 'service_role'], array[]::text[])
    ) as g(kind, object, privilege, roles, needed)
  loop
    v_owner := case v_grant.kind
      when 'schema' then (select nspowner from pg_namespace where oid = to_regnamespace(v_grant.object))
      when 'table' then (select relowner from pg_class where oid = to_regclass(v_grant.object))
      else (select proowner from pg_proc where oid = to_regprocedure(v_grant.object)) end;
    foreach v_role in array v_grant.roles loop
      -- Nothing to do: another role's object, and the right is there.
      v_skip := not pg_has_role(current_user, v_owner, 'usage') and case v_grant.kind
        when 'schema' then has_schema_privilege(v_role, v_grant.object, v_grant.privilege)
        when 'table' then has_table_privilege(v_role, v_grant.object, v_grant.privilege)
        else has_function_privilege(v_role, v_grant.object, v_grant.privilege) end;
      continue when v_skip;
      v_may := case v_grant.kind
        when 'schema' then has_schema_privilege(v_grant.object, v_grant.privilege || ' with grant option')
        when 'table' then has_table_privilege(v_grant.object, v_grant.privilege || ' with grant option')
        else has_function_privilege(v_grant.object, v_grant.privilege || ' with grant option') end;
      if v_may then
        execute format('grant %s on %s %s to %I', v_grant.privilege, v_grant.kind,
                       case v_grant.kind when 'function' then v_grant.object::regprocedure::text else v_grant.object end, v_role);
      elsif v_role = any (v_grant.needed) then
        raise exception 'the role % lacks % on % %, and % may not grant it', v_role, v_grant.privilege, v_grant.kind, v_grant.object, current_user
          using hint = format('As the owner of %s or a superuser run: grant %s on %s %s to %I; then start OdooOps again.',
                              v_grant.object, v_grant.privilege, v_grant.kind, v_grant.object, v_role);
      end if;
    end loop;
  end loop;
end
$$;
