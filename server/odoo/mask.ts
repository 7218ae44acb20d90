// Masking personal data in a copy of an Odoo database with a declarative profile (contract MaskProfile):
// one UPDATE per table, each masked column computed by small SQL functions keyed by a random per-clone
// key, so a value gets the same fake everywhere in one clone (a partner's email in res_partner,
// mail_message.email_from and res_users.login alike) and different fakes in the next clone. Distinct
// originals stay distinct (64-bit hashes), which keeps unique constraints such as logins valid.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { MaskProfile, type MaskRule } from '../../contract/index.ts';
import { packageRoot } from '../package-root.ts';
import { inTableLanes } from './table-lanes.ts';

export const defaultMaskProfile = (): MaskProfile =>
  MaskProfile.parse(JSON.parse(readFileSync(join(packageRoot(), 'server', 'odoo', 'mask-profile.default.json'), 'utf8')));

/** Parses a profile given as JSON text or an object; errors name the offending key. */
export function parseMaskProfile(input: unknown): MaskProfile {
  const r = MaskProfile.safeParse(typeof input === 'string' ? JSON.parse(input) : input);
  if (!r.success) throw new Error(`invalid masking profile: ${r.error.issues.map((i) => `${i.path.join('.') || '(profile)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const FIRST = ['Alex', 'Sam', 'Robin', 'Charlie', 'Jordan', 'Taylor', 'Morgan', 'Casey', 'Jamie', 'Riley', 'Avery', 'Quinn', 'Drew', 'Kai', 'Noa', 'Eden'];
const LAST = ['Example', 'Sample', 'Tester', 'Demo', 'Placeholder', 'Mockford', 'Dummy', 'Fakeley', 'Testwood', 'Specimen', 'Proxy', 'Standin'];
const lit = (xs: string[]) => `array[${xs.map((x) => pg.escapeLiteral(x)).join(',')}]`;

/** The masking functions, in a schema of their own that is dropped before the copy leaves. */
const FUNCTIONS = `
create schema odooops_mask;
create function odooops_mask.h(v text) returns text language sql stable as
  $$ select md5(current_setting('odooops.mask_key') || v) $$;
create function odooops_mask.n(v text, i integer, m integer) returns integer language sql stable as
  $$ select (('x' || substr(odooops_mask.h(v), i, 7))::bit(28)::integer % m) + 1 $$;
create function odooops_mask.fake_name(v text) returns text language sql stable as
  $$ select case when v is null or v = '' then v
            else (${lit(FIRST)})[odooops_mask.n(lower(v), 1, ${FIRST.length})] || ' ' || (${lit(LAST)})[odooops_mask.n(lower(v), 8, ${LAST.length})]
                 || ' ' || substr(odooops_mask.h(lower(v)), 15, 4) end $$;
create function odooops_mask.fake_address(a text) returns text language sql stable as
  $$ select 'u' || substr(odooops_mask.h(lower(btrim(a))), 1, 16) || '@example.invalid' $$;
-- "a@x.com" or "Name <a@x.com>": a plain SQL function, inlined into the UPDATE (no call per row).
create function odooops_mask.fake_one_email(v text) returns text language sql stable as $$
  select case when strpos(v, '<') > 0 and substring(v from '<([^>]+)>') is not null
              then '"' || odooops_mask.fake_name(lower(btrim(substring(v from '<([^>]+)>')))) || '" <' || odooops_mask.fake_address(substring(v from '<([^>]+)>')) || '>'
              else odooops_mask.fake_address(v) end $$;
-- Comma-separated lists of either.
create function odooops_mask.fake_email_list(v text) returns text language plpgsql stable as $$
declare
  p text;
  a text;
  out text[] := '{}';
begin
  if v is null or btrim(v) = '' then return v; end if;
  foreach p in array regexp_split_to_array(v, '\\s*,\\s*') loop
    a := substring(p from '<([^>]+)>');
    if a is not null then
      out := out || ('"' || odooops_mask.fake_name(lower(btrim(a))) || '" <' || odooops_mask.fake_address(a) || '>');
    elsif btrim(p) <> '' then
      out := out || odooops_mask.fake_address(p);
    end if;
  end loop;
  return array_to_string(out, ', ');
end $$;
create function odooops_mask.fake_email(v text) returns text language sql stable as $$
  select case when v is null or btrim(v) = '' then v
              when strpos(v, ',') > 0 then odooops_mask.fake_email_list(v)
              else odooops_mask.fake_one_email(v) end $$;
-- "+00 0…": no real number starts with 000 once reduced to digits, so a fake can never equal (or be
-- verified as) a real one; a plausible-looking range such as +32 499 collided with real numbers.
create function odooops_mask.fake_phone(v text) returns text language sql stable as
  $$ select case when v is null or btrim(v) = '' then v
            else '+00 0' || translate(substr(odooops_mask.h(regexp_replace(v, '[^0-9]', '', 'g')), 1, 9), 'abcdef', '012345') end $$;
create function odooops_mask.fake_text(v text) returns text language sql stable as
  $$ select case when v is null or v = '' then v else 'masked ' || substr(odooops_mask.h(v), 1, 16) end $$;
`;

interface Column {
  table: string;
  column: string;
  type: string;
  nullable: boolean;
}

const TEXTUAL = new Set(['text', 'character varying', 'character']);

function filterSql(rule: MaskRule, params: unknown[]): string {
  const w = rule.where;
  if (!w) return 'true';
  const col = pg.escapeIdentifier(w.column);
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  switch (w.op) {
    case 'eq': return `${col}::text = ${p(String(w.value))}`;
    case 'ne': return `${col}::text is distinct from ${p(String(w.value))}`;
    case 'in': return `${col}::text = any(${p((w.value as unknown[]).map(String))}::text[])`;
    case 'not_in': return `not (${col}::text = any(${p((Array.isArray(w.value) ? w.value : [w.value]).map(String))}::text[]))`;
    case 'is_null': return `${col} is null`;
    case 'not_null': return `${col} is not null`;
  }
}

function valueSql(rule: MaskRule, c: Column, params: unknown[]): string | null {
  const col = pg.escapeIdentifier(c.column);
  const fn = { name: 'fake_name', email: 'fake_email', phone: 'fake_phone', text: 'fake_text' } as const;
  if (rule.strategy === 'keep') return null;
  if (rule.strategy === 'null') {
    if (c.nullable) return 'null';
    // A NOT NULL column cannot be emptied: replace the value instead.
    return TEXTUAL.has(c.type) ? `odooops_mask.fake_text(${col}::text)` : null;
  }
  if (rule.strategy === 'fixed') {
    params.push(rule.value);
    if (TEXTUAL.has(c.type)) return `$${params.length}::text`;
    return c.type === 'jsonb' ? `jsonb_build_object('en_US', $${params.length}::text)` : null;
  }
  const f = `odooops_mask.${fn[rule.strategy]}`;
  if (TEXTUAL.has(c.type)) return `${f}(${col})`;
  // Translatable fields (Odoo 16+) are jsonb {"en_US": "...", ...}: mask every language's value.
  if (c.type === 'jsonb') return `(select jsonb_object_agg(k, ${f}(v)) from jsonb_each_text(${col}) as e(k, v))`;
  return null;
}

export interface MaskReport {
  tables: number;
  columns: number;
  rows: number;
  skipped: string[];
}

/**
 * Masks the database the client is connected to, in the caller's transaction. Columns and tables the
 * database lacks are skipped (listed in the report); so are columns whose type a strategy cannot
 * take (logged).
 */
export async function maskDatabase(
  db: pg.ClientBase, profile: MaskProfile, log: (l: string) => Promise<void>,
  opts: { connect?: () => Promise<pg.Client>; parallel?: number } = {},
): Promise<MaskReport> {
  await db.query(FUNCTIONS);
  const key = randomBytes(24).toString('hex');
  await db.query(`select set_config('odooops.mask_key', $1, false)`, [key]);
  const { rows } = await db.query(`
    select c.table_name as table, c.column_name as column, c.data_type as type, c.is_nullable = 'YES' as nullable
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema = 'public'`);
  const cols = new Map((rows as Column[]).map((c) => [`${c.table}.${c.column}`, c]));
  const tables = new Set((rows as Column[]).map((c) => c.table));
  const skipped: string[] = [];
  const byTable = new Map<string, [Column, MaskRule][]>();
  for (const [key, rule] of Object.entries(profile.columns)) {
    const c = cols.get(key);
    if (!c) {
      skipped.push(key);
      continue;
    }
    byTable.set(c.table, [...(byTable.get(c.table) ?? []), [c, rule]]);
  }
  const report: MaskReport = { tables: 0, columns: 0, rows: 0, skipped };
  // Tables are independent: with a connection factory (and no surrounding transaction), several are
  // masked at once, the biggest first.
  const maskTable = async (c: pg.ClientBase, table: string, list: [Column, MaskRule][]) => {
    const params: unknown[] = [];
    const sets: string[] = [];
    const names: string[] = [];
    for (const [c, rule] of list) {
      const v = valueSql(rule, c, params);
      if (v === null) {
        if (rule.strategy !== 'keep') await log(`mask.log: ${table}.${c.column} (${c.type}) cannot take strategy ${rule.strategy}: left as it is`);
        continue;
      }
      const col = pg.escapeIdentifier(c.column);
      sets.push(rule.where ? `${col} = case when ${filterSql(rule, params)} then ${v} else ${col} end` : `${col} = ${v}`);
      names.push(`${c.column}:${rule.strategy}`);
    }
    if (!sets.length) return;
    const r = await c.query(`update ${pg.escapeIdentifier(table)} set ${sets.join(', ')}`, params);
    report.tables++;
    report.columns += sets.length;
    report.rows += r.rowCount ?? 0;
    await log(`mask.log: ${table}: ${r.rowCount} rows, ${names.join(' ')}`);
  };
  await inTableLanes(db, byTable, maskTable, {
    ...opts,
    // Every session masks with the same key, so one value gets one fake across tables.
    prepare: async (c) => void (await c.query(`select set_config('odooops.mask_key', $1, false)`, [key])),
  });
  for (const t of profile.truncate) {
    if (!tables.has(t)) continue;
    await db.query(`truncate ${pg.escapeIdentifier(t)} cascade`);
    await log(`mask.log: ${t} emptied`);
  }
  await db.query('drop schema odooops_mask cascade');
  await log(`mask.log: ${report.columns} columns in ${report.tables} tables masked; not in this database: ${skipped.length} profile entries`);
  return report;
}
