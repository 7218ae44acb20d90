-- Supabase-compatible shims for a control plane that is not a Supabase project (the embedded default,
-- or any plain Postgres given with --database-url). Every statement creates something only where it
-- is missing, so on a real Supabase project this file changes nothing and the migrations see the very
-- same roles, auth helpers and realtime functions on both backends.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

-- The server's own login must be able to SET ROLE to the API roles, as PostgREST's authenticator can.
do $$
begin
  if not pg_has_role(current_user, 'authenticated', 'member') then
    execute format('grant anon, authenticated, service_role to %I', current_user);
  end if;
end
$$;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- Same bodies as Supabase's: claims come from the transaction-local setting request.jwt.claims.
-- nullif(..., '') because a setting once set reads '' (not NULL) outside its transaction.
do $$
begin
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb language sql stable as
      $f$ select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                          nullif(current_setting('request.jwt.claims', true), ''))::jsonb $f$;
  end if;
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid language sql stable as
      $f$ select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $f$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text language sql stable as
      $f$ select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text $f$;
  end if;
end
$$;
grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

-- Realtime: Broadcast from Database. Supabase stores broadcasts in realtime.messages and its Realtime
-- service reads them; here the row is stored the same way and a NOTIFY tells the local gateway.
create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table if not exists realtime.messages (
  id bigint generated always as identity primary key,
  topic text not null,
  extension text not null default 'broadcast',
  payload jsonb,
  event text,
  private boolean not null default true,
  updated_at timestamptz not null default now(),
  inserted_at timestamptz not null default now()
);
alter table realtime.messages enable row level security;
grant select, insert on realtime.messages to authenticated, service_role;

do $$
begin
  if to_regprocedure('realtime.topic()') is null then
    create function realtime.topic() returns text language sql stable as
      $f$ select nullif(current_setting('realtime.topic', true), '')::text $f$;
  end if;
  if to_regprocedure('realtime.send(jsonb,text,text,boolean)') is null then
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
grant execute on function realtime.topic() to anon, authenticated, service_role;
grant execute on function realtime.send(jsonb, text, text, boolean) to authenticated, service_role;
