// Applies migrations/ in order, each in its own transaction, and records what it applied. An applied
// file that was edited afterwards stops the server: the databases that ran the old text would differ
// from new ones, so the change belongs in a new migration.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { packageRoot } from '../package-root.ts';

export const MIGRATIONS_DIR = join(packageRoot(), 'migrations');
const SHIMS_FILE = join(packageRoot(), 'server', 'db', 'supabase-shims.sql');
const NAME = /^(\d{14})_[a-z0-9_]+\.sql$/;
// Any constant works; it only has to be the same for every OdooOps server sharing the database.
const LOCK_KEY = 7_411_203_118;

export class MigrationError extends Error {}

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
}

/** Installs the Supabase shims where missing, then applies pending migrations. Safe to run concurrently. */
export async function migrate(client: pg.ClientBase, dir = MIGRATIONS_DIR, log: (m: string) => void = () => {}): Promise<MigrateResult> {
  const files = readMigrations(dir);
  await client.query('select pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    await client.query(readFileSync(SHIMS_FILE, 'utf8'));
    await client.query(`
      create schema if not exists odooops_migrations;
      create table if not exists odooops_migrations.applied (
        name text primary key,
        sha256 text not null,
        applied_at timestamptz not null default now()
      )`);
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
    const result: MigrateResult = { applied: [], alreadyApplied: applied.size };
    for (const f of files) {
      if (applied.has(f.name)) continue;
      log(`applying migration ${f.name}`);
      await client.query('begin');
      try {
        await client.query(f.sql);
        await client.query('insert into odooops_migrations.applied (name, sha256) values ($1, $2)', [f.name, f.sha256]);
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
