// A database set up the way hosted Supabase sets up a project's, on Debian's PostgreSQL 15, for the
// shims and migrations to run as hosted Supabase's own `postgres` role: not a superuser, no CREATE on
// schema realtime, not a member of supabase_realtime_admin, which owns realtime.messages. The bootstrap
// superuser is supabase_admin, as on Supabase; it plays the platform (Supabase's image, Auth's and
// Realtime's own migrations). Sources: supabase/postgres migrations/db/migrations (initial schema,
// 10000000000000_demote-postgres, 20250421084701_revoke_admin_roles_from_postgres,
// 20260506172403_grant_realtime_schema_to_postgres_with_grant_option); supabase/realtime@833cf36
// lib/realtime/tenants/repo/migrations (20241030150047_messages_partitioning, 20241108114728_messages_using_uuid,
// 20260605120000_rename_broadcast_send_warning, 20260707120000_restrict_realtime_schema).
//
// Differences from a real project, on purpose:
// - realtime.messages is partitioned by day as on Supabase; the daily partitions Realtime's janitor makes
//   are made here once, for the days around today.
// - postgres has NOCREATEROLE. Hosted Supabase gives it CREATEROLE and stops it from granting itself the
//   platform's roles with supautils' reserved_roles (a C extension, not buildable here); on PostgreSQL 15
//   CREATEROLE alone would let it take supabase_realtime_admin, hiding exactly the mistake this set-up
//   is for.
// - STAND-IN for supautils' policy_grants (`{"postgres": ["realtime.messages", …]}`), the one right hosted
//   Supabase gives postgres on realtime's tables: to run CREATE/ALTER/DROP POLICY on them (supautils runs
//   the statement as a superuser). PostgreSQL only lets a table's owner do that, so a pair of event
//   triggers owned by the superuser make postgres a member of supabase_realtime_admin for the duration of
//   one policy statement, and no longer: granted at ddl_command_start, revoked at ddl_command_end (and
//   rolled back with the statement if it fails). Every other statement (ALTER TABLE … ENABLE ROW LEVEL
//   SECURITY, GRANT, CREATE in schema realtime) is refused as on Supabase. Broader than supautils in one
//   way: during a policy statement on any table postgres holds all of supabase_realtime_admin's rights,
//   not just the policy right on the listed tables (an event trigger cannot see the statement's table
//   before it runs); nothing else runs inside a policy statement, so nothing else can use them.
import pg from 'pg';
import { startDebianPostgres, type DebianPostgres } from './debian-postgres.ts';

export interface HostedSupabase {
  pg: DebianPostgres;
  /** The project's database as the postgres role (what a Supabase connection string gives you). */
  url: string;
  /** The platform: the bootstrap superuser supabase_admin, connected to a database (the project's by default). */
  platform(database?: string): Promise<pg.Client>;
  /**
   * Another project database in the same cluster, set up the same way; `before` runs as the platform
   * after the set-up (to break something). Returns its URL as postgres.
   */
  project(name: string, opts?: { policyGrants?: boolean; before?: string }): Promise<string>;
  stop(): Promise<void>;
}

/** The cluster's roles (initial schema, demote-postgres). */
export const SUPABASE_ROLES_SQL = `
  create role postgres login nosuperuser createdb nocreaterole replication bypassrls;
  create role anon nologin noinherit;
  create role authenticated nologin noinherit;
  create role service_role nologin noinherit bypassrls;
  create role authenticator login noinherit;
  grant anon, authenticated, service_role to authenticator;
  grant anon, authenticated, service_role to postgres;
  create role supabase_auth_admin noinherit nocreaterole login noreplication;
  create role supabase_realtime_admin noinherit nocreaterole nologin noreplication;
`;

/** What a project's database holds before anyone connects: Auth's and Realtime's schemas. */
export const SUPABASE_DATABASE_SQL = `
  do $$ begin
    execute format('grant all on database %I to postgres', current_database());
  end $$;
  grant usage, create on schema public to postgres;

  -- Auth: the schema is the platform's, its functions Auth's; postgres may use them, not create there.
  create schema auth authorization supabase_admin;
  grant usage on schema auth to postgres, anon, authenticated, service_role;
  grant all on schema auth to supabase_auth_admin;
  create function auth.uid() returns uuid language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid /* Supabase Auth's */ $$;
  create function auth.role() returns text language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text /* Supabase Auth's */ $$;
  create function auth.email() returns text language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim.email', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'))::text /* Supabase Auth's */ $$;
  create function auth.jwt() returns jsonb language sql stable as $$
    select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb /* Supabase Auth's */ $$;
  alter function auth.uid() owner to supabase_auth_admin;
  alter function auth.role() owner to supabase_auth_admin;
  alter function auth.email() owner to supabase_auth_admin;
  alter function auth.jwt() owner to supabase_auth_admin;

  -- Realtime: its schema and objects belong to supabase_realtime_admin; postgres has USAGE (with grant
  -- option), no CREATE, and SELECT/INSERT/UPDATE on realtime.messages.
  create schema realtime authorization supabase_admin;
  grant all on schema realtime to supabase_realtime_admin with grant option;
  grant usage on schema realtime to postgres with grant option;
  grant usage on schema realtime to anon, authenticated, service_role;
  create table realtime.messages (
    topic text not null,
    extension text not null,
    payload jsonb,
    event text,
    private boolean default false,
    updated_at timestamp not null default now(),
    inserted_at timestamp not null default now(),
    id uuid not null default gen_random_uuid(),
    primary key (id, inserted_at)
  ) partition by range (inserted_at);
  do $$
  declare d date;
  begin
    for d in select generate_series(current_date - 2, current_date + 3, '1 day')::date loop
      execute format('create table realtime.%I partition of realtime.messages for values from (%L) to (%L)',
                     'messages_' || to_char(d, 'YYYY_MM_DD'), d, d + 1);
      execute format('alter table realtime.%I owner to supabase_realtime_admin', 'messages_' || to_char(d, 'YYYY_MM_DD'));
    end loop;
  end $$;
  alter table realtime.messages enable row level security;
  grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;
  alter table realtime.messages owner to supabase_realtime_admin;
  create function realtime.topic() returns text language sql stable as
    $$ select nullif(current_setting('realtime.topic', true), '')::text $$;
  -- Runs as its caller and always stores (Realtime reads the table's replication stream).
  create function realtime.send(payload jsonb, event text, topic text, private boolean default true) returns void
  language plpgsql as $$
  declare
    generated_id uuid;
    final_payload jsonb;
  begin
    begin
      generated_id := gen_random_uuid();
      if payload ? 'id' then
        final_payload := payload;
      else
        final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
      end if;
      execute format('set local realtime.topic to %L', topic);
      insert into realtime.messages (id, payload, event, topic, private, extension)
      values (generated_id, final_payload, event, topic, private, 'broadcast');
    exception
      when others then
        raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
    end;
  end;
  $$;
  alter function realtime.topic() owner to supabase_realtime_admin;
  alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
  grant execute on all functions in schema realtime to postgres, anon, authenticated, service_role;
`;

/** STAND-IN for supautils' policy_grants on realtime's tables (see the head of this file). */
export const POLICY_GRANTS_STANDIN_SQL = `
  create schema supautils_standin authorization supabase_admin;
  create function supautils_standin.policy_statement_start() returns event_trigger
  language plpgsql security definer set search_path = '' as $$
  begin
    -- session_user: inside a SECURITY DEFINER function current_user is the function's owner.
    if session_user = 'postgres' then
      grant supabase_realtime_admin to postgres;
    end if;
  end $$;
  create function supautils_standin.policy_statement_end() returns event_trigger
  language plpgsql security definer set search_path = '' as $$
  begin
    if session_user = 'postgres' then
      revoke supabase_realtime_admin from postgres;
    end if;
  end $$;
  revoke all on function supautils_standin.policy_statement_start(), supautils_standin.policy_statement_end() from public;
  create event trigger supautils_standin_policy_start on ddl_command_start
    when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') execute function supautils_standin.policy_statement_start();
  create event trigger supautils_standin_policy_end on ddl_command_end
    when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') execute function supautils_standin.policy_statement_end();
`;

export async function startHostedSupabase(opts: { policyGrants?: boolean } = {}): Promise<HostedSupabase> {
  const srv = await startDebianPostgres({ superuser: 'supabase_admin' });
  const urlOf = (db: string) => `postgres://postgres@${srv.host}:${srv.port}/${db}`;
  const setUp = async (db: string, o: { policyGrants?: boolean; before?: string }) => {
    const su = await srv.client(db);
    try {
      await su.query(SUPABASE_DATABASE_SQL);
      if (o.policyGrants !== false) await su.query(POLICY_GRANTS_STANDIN_SQL);
      if (o.before) await su.query(o.before);
    } finally {
      await su.end();
    }
  };
  try {
    const su = await srv.client('postgres');
    try {
      await su.query(SUPABASE_ROLES_SQL);
    } finally {
      await su.end();
    }
    await setUp('postgres', opts);
  } catch (err) {
    await srv.stop();
    throw err;
  }
  return {
    pg: srv,
    url: urlOf('postgres'),
    platform: (db = 'postgres') => srv.client(db),
    async project(name, o = {}) {
      const su = await srv.client('postgres');
      try {
        await su.query(`create database ${pg.escapeIdentifier(name)}`);
      } finally {
        await su.end();
      }
      await setUp(name, o);
      return urlOf(name);
    },
    stop: () => srv.stop(),
  };
}
