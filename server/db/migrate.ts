// Applies migrations/ in order, each in its own transaction, and records what it applied. An applied
// file that was edited afterwards stops the server: the databases that ran the old text would differ
// from new ones, so the change belongs in a new migration. Where the Supabase CLI's history exists
// (supabase-history.ts), it is kept too, so `supabase db push` and the server agree on what is applied.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { packageRoot } from '../package-root.ts';
import { SUPABASE_HISTORY_TABLE, readSupabaseHistory, recordInSupabaseHistory, versionAndName } from './supabase-history.ts';

export const MIGRATIONS_DIR = join(packageRoot(), 'migrations');
export const SHIMS_FILE = join(packageRoot(), 'server', 'db', 'supabase-shims.sql');
const NAME = /^(\d{14})_[a-z0-9_]+\.sql$/;
// Any constant works; it only has to be the same for every OdooOps server sharing the database.
const LOCK_KEY = 7_411_203_118;

export class MigrationError extends Error {
  /** What to do about it, where the message alone does not say. */
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.hint = hint;
  }
}

export interface MigrationFile {
  name: string;
  sql: string;
  sha256: string;
}

export function readMigrations(dir = MIGRATIONS_DIR): MigrationFile[] {
  const names = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  for (const n of names) {
    if (!NAME.test(n)) throw new MigrationError(`migration file ${n} is not named <YYYYMMDDHHMMSS>_<name>.sql`);
  }
  return names.map((name) => {
    const sql = readFileSync(join(dir, name), 'utf8');
    return { name, sql, sha256: createHash('sha256').update(sql).digest('hex') };
  });
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
  /** Files `supabase db push` had applied (found in its history), now recorded as applied here too. */
  fromSupabaseHistory: string[];
}

/** The note on a migration the runner did not apply itself. */
export const PUSHED_NOTE = `applied by supabase db push (found in ${SUPABASE_HISTORY_TABLE})`;

/** Installs the Supabase shims where missing, then applies pending migrations. Safe to run concurrently. */
export async function migrate(client: pg.ClientBase, dir = MIGRATIONS_DIR, log: (m: string) => void = () => {}): Promise<MigrateResult> {
  const files = readMigrations(dir);
  await client.query('select pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    try {
      await client.query(readFileSync(SHIMS_FILE, 'utf8'));
    } catch (err) {
      // The shims' own refusals name the object and carry what to do in the hint.
      throw new MigrationError(`the Supabase shims stopped: ${(err as Error).message}`, (err as { hint?: string }).hint);
    }
    // Each only where missing: a role that may not create schemas (a second server with a smaller
    // role) still starts on a database whose history exists.
    await client.query(`
      do $$
      begin
        if to_regnamespace('odooops_migrations') is null then
          create schema odooops_migrations;
        end if;
        if to_regclass('odooops_migrations.applied') is null then
          create table odooops_migrations.applied (
            name text primary key,
            sha256 text not null,
            applied_at timestamptz not null default now()
          );
        end if;
        -- Why a migration counts as applied when the runner did not apply it (see PUSHED_NOTE).
        if not exists (select 1 from pg_attribute where attrelid = 'odooops_migrations.applied'::regclass and attname = 'note' and not attisdropped) then
          alter table odooops_migrations.applied add column note text;
        end if;
      end
      $$`);
    const { rows } = await client.query<{ name: string; sha256: string }>('select name, sha256 from odooops_migrations.applied');
    const applied = new Map(rows.map((r) => [r.name, r.sha256]));
    const known = new Set(files.map((f) => f.name));
    for (const name of applied.keys()) {
      if (!known.has(name)) {
        throw new MigrationError(`migration ${name} was applied to this database but is missing from ${dir}: this server is older than the database; use a newer OdooOps`);
      }
    }
    for (const f of files) {
      const sha = applied.get(f.name);
      if (sha && sha !== f.sha256) {
        throw new MigrationError(
          `migration ${f.name} was edited after it was applied (applied sha256 ${sha.slice(0, 12)}…, file ${f.sha256.slice(0, 12)}…). ` +
            'Restore the file as it was and put the change in a new migration.',
        );
      }
    }
    const result: MigrateResult = { applied: [], alreadyApplied: applied.size, fromSupabaseHistory: [] };
    const history = await readSupabaseHistory(client);
    for (const f of files) {
      if (applied.has(f.name)) continue;
      const { version, name } = versionAndName(f.name);
      const pushed = history?.versions.get(version);
      if (pushed !== undefined) {
        // An empty name: the CLI made the table before it had the column; the version alone decides.
        if (pushed !== '' && pushed !== name) {
          throw new MigrationError(
            `${SUPABASE_HISTORY_TABLE} says version ${version} is "${pushed}", but OdooOps's migration ${version} is ${f.name}: ` +
              'two migrations share a version. Give your own migration another version and correct the history (supabase migration repair), then start OdooOps again.',
          );
        }
        if (history!.writableByApi) {
          throw new MigrationError(
            `${SUPABASE_HISTORY_TABLE} says ${f.name} was applied, but the API roles (anon, authenticated) may write that table, so anyone signed in could have put it there. ` +
              `Revoke it (revoke insert, update on ${SUPABASE_HISTORY_TABLE} from anon, authenticated, public), then start OdooOps again.`,
          );
        }
        await client.query('insert into odooops_migrations.applied (name, sha256, note) values ($1, $2, $3)', [f.name, f.sha256, PUSHED_NOTE]);
        log(`migration ${f.name} was applied by supabase db push: recorded as applied`);
        result.fromSupabaseHistory.push(f.name);
        continue;
      }
      if (history && !history.canInsert) {
        throw new MigrationError(
          `migration ${f.name} is pending, and ${SUPABASE_HISTORY_TABLE} exists but this role may not insert into it, so supabase db push would apply it again. ` +
            'Grant insert on it to this role, or apply the migrations with supabase db push, then start OdooOps again.',
        );
      }
      log(`applying migration ${f.name}`);
      await client.query('begin');
      try {
        await client.query(f.sql);
        await client.query('insert into odooops_migrations.applied (name, sha256) values ($1, $2)', [f.name, f.sha256]);
        if (history) await recordInSupabaseHistory(client, history, f.name, f.sql);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw new MigrationError(`migration ${f.name} failed and was rolled back: ${(err as Error).message}`);
      }
      result.applied.push(f.name);
    }
    return result;
  } finally {
    await client.query('select pg_advisory_unlock($1)', [LOCK_KEY]);
  }
}
