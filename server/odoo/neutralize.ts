// Neutralization and secret scrubbing of a copy of an Odoo database, in the project's own SQL: one file
// per module (server/odoo/neutralize/<module>.sql, after Odoo's data/neutralize.sql), run for the
// modules installed in the copy. Statements about tables or columns a version lacks are skipped and
// said so; anything else fails the clone.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { packageRoot } from '../package-root.ts';

const DIR = join(packageRoot(), 'server', 'odoo', 'neutralize');
const MISSING = new Set(['42P01', '42703']); // undefined_table, undefined_column

export const neutralizeRules = (): Map<string, string> =>
  new Map(readdirSync(DIR).filter((f) => f.endsWith('.sql')).map((f) => [f.slice(0, -4), readFileSync(join(DIR, f), 'utf8')]));

/** Splits a rules file into statements (the files are ours: statements end with ";" at a line end). */
export const statements = (sql: string): string[] =>
  sql.split(/;\s*$/m).map((s) => s.replace(/^\s*--.*$/gm, '').trim()).filter(Boolean);

/**
 * Runs statements inside the caller's transaction, each under a savepoint so that one about a table
 * this database lacks is skipped (and logged) without aborting the rest.
 */
export async function runTolerant(db: pg.ClientBase, label: string, sqls: string[], log: (l: string) => Promise<void>): Promise<number> {
  let applied = 0;
  for (const sql of sqls) {
    await db.query('savepoint odooops_stmt');
    try {
      const r = await db.query(sql);
      await db.query('release savepoint odooops_stmt');
      applied++;
      await log(`${label}: ${sql.split('\n')[0]!.slice(0, 120)} (${r.rowCount ?? 0} rows)`);
    } catch (err) {
      await db.query('rollback to savepoint odooops_stmt');
      const code = (err as { code?: string }).code ?? '';
      if (!MISSING.has(code)) throw new Error(`${label}: ${(err as Error).message} in: ${sql.slice(0, 200)}`);
      await log(`${label}: skipped, ${(err as Error).message} (not in this Odoo version)`);
    }
  }
  return applied;
}

/** Neutralizes like `odoo-bin neutralize` for the installed modules; lists modules without rules. */
export async function neutralize(db: pg.ClientBase, modules: string[], log: (l: string) => Promise<void>): Promise<{ applied: string[]; withoutRules: string[] }> {
  const rules = neutralizeRules();
  const applied: string[] = [];
  // base first, as Odoo does (it owns the tables the others touch).
  for (const m of ['base', ...modules.filter((x) => x !== 'base').sort()]) {
    const sql = rules.get(m);
    if (!sql || !modules.includes(m)) continue;
    await runTolerant(db, `neutralize.log ${m}`, statements(sql), log);
    applied.push(m);
  }
  const withoutRules = modules.filter((m) => !rules.has(m));
  await log(`neutralize.log: rules applied for ${applied.join(', ')}; installed modules without neutralize rules: ${withoutRules.join(', ') || 'none'}`);
  return { applied, withoutRules };
}

/**
 * A system parameter named like a credential that is a setting, not a secret: its value is a boolean,
 * or a small whole number where its name says it counts something. auth_signup.reset_password (True:
 * /web/reset_password works), auth_password_policy.minlength, password.hashing.rounds,
 * auth_signup.reset_password.validity.hours, portal.allow_api_keys, mail.chat_from_token stay; keys,
 * tokens and passwords (mail.twilio_account_token, google_gmail_client_secret, …) hold strings and go.
 */
const FEATURE_FLAG = `coalesce(value, '') ~* '^(true|false)$'
  OR (coalesce(value, '') ~ '^[0-9]{1,7}$' AND key ~* '(rounds|length|hours|days|minutes|seconds|size|limit|count|timeout|delay|min|max)$')`;

/**
 * Scrubs secrets neutralization leaves (notes §4.2): SMTP and fetchmail credentials, API keys, TOTP
 * secrets, OAuth and calendar tokens, payment keys, config parameters named like key/token/secret/
 * password (unless they are feature flags, FEATURE_FLAG); then gives the copy its own identity: new database.uuid and database.secret, web.base.url.
 */
export async function scrubSecrets(db: pg.ClientBase, baseUrl: string, log: (l: string) => Promise<void>): Promise<void> {
  await runTolerant(db, 'scrub', [
    'UPDATE ir_mail_server SET smtp_user = NULL, smtp_pass = NULL',
    'UPDATE fetchmail_server SET "user" = NULL, password = NULL',
    `DELETE FROM ir_config_parameter WHERE (key ~* '(api_?key|token|secret|password|passwd)' AND key <> 'database.secret' AND NOT (${FEATURE_FLAG}))
       OR key = 'database.enterprise_code' OR key LIKE 'database.expiration%'`,
  ], log);
  const kept = (await db.query(`select key, value from ir_config_parameter where key ~* '(api_?key|token|secret|password|passwd)' and key <> 'database.secret' order by key`)).rows;
  if (kept.length) await log(`scrub: kept ${kept.length} setting(s) named like a credential, their values being flags or quantities, not secrets: ${kept.map((r) => `${r.key} = ${r.value}`).join(', ')}`);
  // Every other nullable text column named like a credential, in any table (payment provider keys,
  // OAuth and calendar tokens, cloud storage credentials...). Login passwords are the profile's business.
  const { rows } = await db.query(`
    select c.table_name, c.column_name from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema = 'public' and c.is_nullable = 'YES'
      and c.data_type in ('text', 'character varying', 'character', 'jsonb')
      and c.column_name ~ '(secret|password|passwd|token|api_key|_key$|totp)'
      and c.column_name not in ('password') and (c.table_name, c.column_name) not in (('iap_account', 'account_token'))
    order by 1, 2`);
  const byTable = new Map<string, string[]>();
  for (const r of rows as { table_name: string; column_name: string }[]) byTable.set(r.table_name, [...(byTable.get(r.table_name) ?? []), r.column_name]);
  for (const [table, cols] of byTable) {
    const id = pg.escapeIdentifier;
    const r = await db.query(`UPDATE ${id(table)} SET ${cols.map((c) => `${id(c)} = NULL`).join(', ')} WHERE ${cols.map((c) => `${id(c)} IS NOT NULL`).join(' OR ')}`);
    await log(`scrub: ${table}.{${cols.join(', ')}} cleared (${r.rowCount} rows)`);
  }
  await runTolerant(db, 'scrub', [
    `INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', gen_random_uuid()::text), ('database.secret', gen_random_uuid()::text),
       ('database.create_date', to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  ], log);
  await db.query(`INSERT INTO ir_config_parameter (key, value) VALUES ('web.base.url', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [baseUrl]);
  await log(`scrub: new database.uuid and database.secret; web.base.url = ${baseUrl}`);
}
