// The Supabase CLI's migration history. `supabase db push` applies supabase/migrations/<version>_<name>.sql
// and records each in supabase_migrations.schema_migrations (version text primary key, statements
// text[], name text; supabase/cli pkg/migration/history.go). OdooOps's files are named the same way, so
// where that table exists the server's runner and the CLI keep one history: the runner records what it
// applies there too, and takes a version the CLI recorded as applied.
import type pg from 'pg';

export const SUPABASE_HISTORY_TABLE = 'supabase_migrations.schema_migrations';

export interface SupabaseHistory {
  /** version → name, as the CLI recorded them. */
  versions: Map<string, string>;
  /** Which of the optional columns exist (older CLIs made the table with version only; newer ones add them). */
  hasName: boolean;
  hasStatements: boolean;
  canInsert: boolean;
  /** The API's roles may write it: then a user could mark a migration applied that never ran. */
  writableByApi: boolean;
}

/** `20261122000100_ops_schema.sql` → version 20261122000100, name ops_schema (the CLI's own split). */
export function versionAndName(file: string): { version: string; name: string } {
  const m = /^([0-9]+)_(.*)\.sql$/.exec(file);
  if (!m) throw new Error(`${file} is not named <version>_<name>.sql`);
  return { version: m[1]!, name: m[2]! };
}

/** The CLI's history, or null where the table does not exist (no `supabase db push` ever ran here). */
export async function readSupabaseHistory(client: pg.ClientBase): Promise<SupabaseHistory | null> {
  const { rows: [t] } = await client.query<{ exists: boolean; has_name: boolean; has_statements: boolean; can_insert: boolean; api_writable: boolean }>(`
    select to_regclass($1) is not null as exists,
           exists (select 1 from pg_attribute where attrelid = to_regclass($1) and attname = 'name' and not attisdropped) as has_name,
           exists (select 1 from pg_attribute where attrelid = to_regclass($1) and attname = 'statements' and not attisdropped) as has_statements,
           to_regclass($1) is not null and has_table_privilege(to_regclass($1), 'insert') as can_insert,
           to_regclass($1) is not null and exists (
             select 1 from pg_roles r
             where r.rolname in ('anon', 'authenticated')
               and has_schema_privilege(r.oid, (select relnamespace from pg_class where oid = to_regclass($1)), 'usage')
               and has_table_privilege(r.oid, to_regclass($1), 'insert, update')) as api_writable`, [SUPABASE_HISTORY_TABLE]);
  if (!t!.exists) return null;
  const { rows } = await client.query<{ version: string; name: string }>(
    `select version, ${t!.has_name ? `coalesce(name, '')` : `''`} as name from ${SUPABASE_HISTORY_TABLE}`,
  );
  return {
    versions: new Map(rows.map((r) => [r.version, r.name])),
    hasName: t!.has_name,
    hasStatements: t!.has_statements,
    canInsert: t!.can_insert,
    writableByApi: t!.api_writable,
  };
}

/**
 * Records a migration the runner applied, in the caller's transaction, as the CLI would have. The file
 * goes in as one statement: the runner ran it as one script, and `supabase migration fetch` writes the
 * statements back out joined, so the file comes back as it is.
 */
export async function recordInSupabaseHistory(client: pg.ClientBase, history: SupabaseHistory, file: string, sql: string): Promise<void> {
  const { version, name } = versionAndName(file);
  const columns = ['version', ...(history.hasName ? ['name'] : []), ...(history.hasStatements ? ['statements'] : [])];
  const values = [version, ...(history.hasName ? [name] : []), ...(history.hasStatements ? [[sql]] : [])];
  await client.query(
    `insert into ${SUPABASE_HISTORY_TABLE} (${columns.join(', ')}) values (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
    values,
  );
  history.versions.set(version, name);
}
