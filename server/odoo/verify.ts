// Checks on a neutralized, masked copy before it may leave the production server: no sampled original
// email, phone or VAT value remains in any text column; only the autovacuum cron is active; only the
// dummy mail server is active. Findings name tables and columns, never the values.
import pg from 'pg';
import { normalizePii as normalize, type PiiSample } from './pii-scan.ts';
import { inTableLanes } from './table-lanes.ts';

export type { PiiSample };

/**
 * Samples personal values of the source (kept in memory only, never logged). Runs inside the caller's
 * transaction (the copy's snapshot): a table or column this Odoo version lacks is skipped by savepoint.
 */
export async function samplePii(db: pg.ClientBase, perKind = 200): Promise<PiiSample> {
  const pick = async (sql: string) => {
    await db.query('savepoint odooops_sample');
    try {
      const r = (await db.query(sql, [perKind])).rows.map((r) => String(r.v)).filter((v) => v.trim().length >= 5);
      await db.query('release savepoint odooops_sample');
      return r;
    } catch (err) {
      await db.query('rollback to savepoint odooops_sample');
      if (['42P01', '42703'].includes((err as { code?: string }).code ?? '')) return [];
      throw err;
    }
  };
  // Some 500 pages of a big table (TABLESAMPLE SYSTEM, repeatable) rather than all its rows: sampling a
  // million partners took seconds. Ordered by a hash, not alphabetically; the same sample for the same data.
  const sampled = async (table: string) => {
    const pages = Number((await db.query(`select coalesce(pg_relation_size(to_regclass($1)) / current_setting('block_size')::int, 0) as p`, [table])).rows[0].p);
    return pages > 500 ? `${table} tablesample system (${((500 / pages) * 100).toFixed(4)}) repeatable (17)` : table;
  };
  const partners = await sampled('res_partner');
  const users = await sampled('res_users');
  const emails = await pick(`select v from (select distinct lower(email) as v from ${partners} where email like '%@%') x order by md5(v) limit $1`);
  emails.push(...(await pick(`select v from (select distinct lower(login) as v from ${users} where login like '%@%') x order by md5(v) limit $1`)));
  const phones = await pick(`select v from (select distinct v from (select phone as v from ${partners} union all select mobile from ${partners}) y where v is not null) x order by md5(v) limit $1`);
  const vats = await pick(`select v from (select distinct vat as v from ${partners} where vat is not null) x order by md5(v) limit $1`);
  return { emails: [...new Set(emails)], phones, vats };
}

export interface Finding {
  table: string;
  column: string;
  kind: string;
  rows: number;
}

// Tokens that look like an email, a phone number or a VAT number. Each is pulled out of the text and
// normalized (emails lower-cased, phones and VATs reduced to digits and letters), then looked up in the
// sample as a hash: one cheap pass per column instead of a regex of hundreds of alternatives per row.
const TOKENS = {
  email: { re: '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', norm: (x: string) => `lower(${x})` },
  phone: { re: '\\+?[0-9][0-9 ./()-]{5,}[0-9]', norm: (x: string) => `regexp_replace(${x}, '[^0-9]', '', 'g')` },
  vat: { re: '[A-Za-z]{2}[0-9A-Za-z]{8,13}', norm: (x: string) => `upper(${x})` },
} as const;

/**
 * Scans every text-like column of every table (of the `only` tables when given) for any sampled value.
 * Per table, one pass: the row's text columns joined into one string, three token regexes over it, each token looked up in an indexed
 * temporary table of the sample. Only when a table has hits is it scanned again per column, to say
 * which columns (never which values). Tables are spread over `connect`ed sessions when given.
 */
export async function findPii(
  db: pg.ClientBase, sample: PiiSample, connect?: () => Promise<pg.Client>, parallel = 1, only?: Set<string>,
): Promise<Finding[]> {
  const { rows } = await db.query(`
    select c.table_name as t, c.column_name as c from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema = 'public' and c.data_type in ('text', 'character varying', 'character', 'jsonb')
    order by 1, 2`);
  const byTable = new Map<string, string[]>();
  for (const r of rows as { t: string; c: string }[]) if (!only || only.has(r.t)) byTable.set(r.t, [...(byTable.get(r.t) ?? []), r.c]);
  const values: [string, string][] = [];
  for (const kind of ['email', 'phone', 'vat'] as const) {
    const list = { email: sample.emails, phone: sample.phones, vat: sample.vats }[kind];
    for (const v of new Set(list.map(normalize[kind]))) if (v.length >= 5) values.push([kind, v]);
  }
  if (!values.length) return [];
  const findings: Finding[] = [];

  const prepare = async (c: pg.ClientBase) => {
    await c.query('create temporary table if not exists odooops_pii (kind text not null, v text not null, primary key (kind, v))');
    await c.query('insert into odooops_pii select * from unnest($1::text[], $2::text[]) on conflict do nothing', [values.map((x) => x[0]), values.map((x) => x[1])]);
    await c.query('analyze odooops_pii');
  };
  const hit = (text: string) => (['email', 'phone', 'vat'] as const).map((k) => `exists (select 1 from regexp_matches(${text}, '${TOKENS[k].re}', 'g') m
      join odooops_pii p on p.kind = '${k}' and p.v = ${TOKENS[k].norm('m[1]')})`).join(' or ');
  const scan = async (c: pg.ClientBase, table: string, cols: string[]) => {
    const t = pg.escapeIdentifier(table);
    const all = `concat_ws(' ', ${cols.map((x) => `${pg.escapeIdentifier(x)}::text`).join(', ')})`;
    const n = Number((await c.query(`select count(*) as n from ${t} where ${hit(all)}`)).rows[0].n);
    if (n === 0) return;
    for (const col of cols) {
      for (const k of ['email', 'phone', 'vat'] as const) {
        const x = `${pg.escapeIdentifier(col)}::text`;
        const r = await c.query(`select count(*) as n from ${t} where exists (select 1 from regexp_matches(${x}, '${TOKENS[k].re}', 'g') m
          join odooops_pii p on p.kind = '${k}' and p.v = ${TOKENS[k].norm('m[1]')})`);
        if (Number(r.rows[0].n) > 0) findings.push({ table, column: col, kind: k, rows: Number(r.rows[0].n) });
      }
    }
  };
  await inTableLanes(db, byTable, scan, { connect, parallel, prepare });
  return findings.sort((a, b) => a.table.localeCompare(b.table) || a.column.localeCompare(b.column));
}

/** Only base.autovacuum_job may run, and only the dummy "invalid" mail server may be active. */
export async function checkNeutralized(db: pg.ClientBase): Promise<string[]> {
  const problems: string[] = [];
  const crons = await db.query(`
    select c.id, c.active, d.module is not null as autovacuum
    from ir_cron c left join ir_model_data d on d.model = 'ir.cron' and d.res_id = c.id and d.module = 'base' and d.name = 'autovacuum_job'
    where c.active`);
  const others = crons.rows.filter((r) => !r.autovacuum).length;
  if (others) problems.push(`${others} cron(s) other than base.autovacuum_job are active`);
  if (!crons.rows.some((r) => r.autovacuum)) problems.push('the autovacuum cron is not active');
  const servers = (await db.query(`select smtp_host from ir_mail_server where active`)).rows;
  if (servers.length !== 1 || servers[0].smtp_host !== 'invalid') {
    problems.push(`active mail servers: ${servers.map((s) => s.smtp_host).join(', ') || 'none'} (expected only the dummy "invalid")`);
  }
  const flag = (await db.query(`select value from ir_config_parameter where key = 'database.is_neutralized'`)).rows[0]?.value;
  if (flag !== 'true') problems.push('database.is_neutralized is not true');
  return problems;
}
