// Checks on a neutralized, masked copy before it may leave the production server: no sampled original
// email, phone, VAT, person name or street line remains in any text column; only the autovacuum cron
// is active; only the dummy mail server is active. Findings name tables and columns, never the values.
import pg from 'pg';
import { normalizePii as normalize, samplePhrases, type PiiSample } from './pii-scan.ts';
import { normalizePhrase, phraseOf } from './phrase-scan.ts';
import { inTableLanes } from './table-lanes.ts';

export type { PiiSample };

/**
 * Samples personal values of the source (kept in memory only, never logged). Runs inside the caller's
 * transaction (the copy's snapshot): a table or column this Odoo version lacks is skipped by savepoint.
 * Only personal data counts, so that the database's own texts do not fail a clone: no value of a
 * partner Odoo's modules create (OdooBot, the public user, demo data, the main company: shipped views,
 * templates and module descriptions carry them literally), none of the companies' own contact data
 * (res_company and its partner: kept readable in a clone, carried by report layouts and website pages),
 * not even where a person's record holds the same value; names are of persons (not companies).
 * Phrases that occur in `avoid` (the profile's fixed values) are left out: the copy holds them anyway.
 */
export async function samplePii(db: pg.ClientBase, perKind = 200, avoid: string[] = []): Promise<PiiSample> {
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
  const sampled = async (table: string, alias = '') => {
    const pages = Number((await db.query(`select coalesce(pg_relation_size(to_regclass($1)) / current_setting('block_size')::int, 0) as p`, [table])).rows[0].p);
    return pages > 500 ? `${table} ${alias} tablesample system (${((500 / pages) * 100).toFixed(4)}) repeatable (17)` : `${table} ${alias}`;
  };
  const has = new Set((await db.query(`select table_name || '.' || column_name as c from information_schema.columns
    where table_schema = 'public' and table_name in ('res_partner', 'res_company', 'res_users', 'ir_model_data', 'ir_module_module')`)).rows.map((r) => r.c as string));
  // Not personal data: partners that Odoo's modules ship (demo partners, OdooBot, the main company:
  // their values are written literally in shipped views, templates and module descriptions too) and
  // the companies' own partners (a clone keeps them readable, and report layouts, website pages and
  // mail templates carry them). Module "__export__"/"__import__" xmlids are the users' own records, and
  // so is an xmlid of a module that is not installed (an import can name any).
  const shippedIds = [
    ...(has.has('ir_model_data.module') && has.has('ir_model_data.res_id') && has.has('ir_module_module.state')
      ? [`select d.res_id from ir_model_data d where d.model = 'res.partner' and d.res_id is not null and d.module not like '\\_\\_%'
          and d.module in (select m.name from ir_module_module m where m.state = 'installed')`] : []),
    ...(has.has('res_company.partner_id') ? ['select c.partner_id from res_company c where c.partner_id is not null'] : []),
  ];
  const notShipped = (alias: string) => (shippedIds.length ? `${alias}.id not in (${shippedIds.join(' union ')})` : 'true');
  const userNotShipped = has.has('res_users.partner_id') && shippedIds.length
    ? `u.partner_id not in (${shippedIds.join(' union ')})` : 'true';
  // Odoo 19 dropped res_partner.mobile (and res_company.mobile): sample the phone columns there are.
  const phoneCols = ['phone', 'mobile'].filter((c) => has.has(`res_partner.${c}`));
  const people = await sampled('res_partner', 'p');
  const users = await sampled('res_users', 'u');
  const emails = await pick(`select v from (select distinct lower(p.email) as v from ${people} where p.email like '%@%' and ${notShipped('p')}) x order by md5(v) limit $1`);
  emails.push(...(await pick(`select v from (select distinct lower(u.login) as v from ${users} where u.login like '%@%' and ${userNotShipped}) x order by md5(v) limit $1`)));
  const phones = phoneCols.length ? await pick(`select v from (select distinct v from (${phoneCols.map((c) => `select p.${c} as v from ${people} where ${notShipped('p')}`).join(' union all ')}) y
    where v is not null) x order by md5(v) limit $1`) : [];
  const vats = await pick(`select v from (select distinct p.vat as v from ${people} where p.vat is not null and ${notShipped('p')}) x order by md5(v) limit $1`);
  // The same values on a person's record (a salesperson's work phone is the company's) are not theirs either.
  const shipped = await shippedValues(db, has, shippedIds);
  const drop = (list: string[], kind: 'email' | 'phone' | 'vat') => list.filter((v) => !shipped[kind].has(normalize[kind](v)));

  const own = notShipped('p');
  const person = has.has('res_partner.is_company') ? 'not coalesce(p.is_company, false)' : 'true';
  const companies = has.has('res_company.partner_id')
    ? `and v not in (select c.street from res_partner c where c.id in (select partner_id from res_company) and c.street is not null
                     union select c.street2 from res_partner c where c.id in (select partner_id from res_company) and c.street2 is not null)` : '';
  const worth = (list: string[]) => {
    const avoided = avoid.map((a) => ` ${normalizePhrase(a)} `);
    return list.filter((v) => {
      const p = phraseOf(v);
      return p !== null && !avoided.some((a) => a.includes(` ${p} `));
    });
  };
  // Two words at least: a single word ("Mitchell", "Centrum") is too common to mean a person.
  const names = worth(await pick(`select v from (select distinct btrim(p.name) as v from ${people}
    where p.name ~ '[^[:space:]][[:space:]]+[^[:space:]]' and ${person} and ${own}) x order by md5(v) limit $1`));
  const streets = worth(await pick(`select v from (select distinct btrim(v) as v from (select p.street as v from ${people} where ${own}
    union all select p.street2 from ${people} where ${own}) y where v ~ '[^[:space:]][[:space:]]+[^[:space:]]' ${companies}) x order by md5(v) limit $1`));
  return { emails: drop([...new Set(emails)], 'email'), phones: drop(phones, 'phone'), vats: drop(vats, 'vat'), names, streets };
}

/** The emails, phones and VATs of shipped and company partners and of the companies themselves, normalized. */
async function shippedValues(db: pg.ClientBase, has: Set<string>, shippedIds: string[]) {
  const out = { email: new Set<string>(), phone: new Set<string>(), vat: new Set<string>() };
  const kinds = { email: ['email'], phone: ['phone', 'mobile'], vat: ['vat'] } as const;
  const sources: string[] = [];
  for (const [kind, cols] of Object.entries(kinds) as [keyof typeof kinds, readonly string[]][]) {
    for (const c of cols) {
      if (shippedIds.length && has.has(`res_partner.${c}`)) sources.push(`select '${kind}' as k, p.${c} as v from res_partner p where p.id in (${shippedIds.join(' union ')})`);
      if (has.has(`res_company.${c}`)) sources.push(`select '${kind}', c.${c} from res_company c`);
    }
  }
  if (!sources.length) return out;
  const { rows } = await db.query(`select k, v from (${sources.join(' union ')}) x where v is not null`);
  for (const r of rows as { k: keyof typeof kinds; v: string }[]) out[r.k].add(normalize[r.k](r.v));
  return out;
}

export interface Finding {
  table: string;
  column: string;
  kind: string;
  rows: number;
}

const KINDS = ['email', 'phone', 'vat', 'name', 'street'] as const;
type Kind = (typeof KINDS)[number];

// Tokens that look like an email, a phone number or a VAT number. Each is pulled out of the text and
// normalized (emails lower-cased, phones and VATs reduced to digits and letters), then looked up in the
// sample as a hash: one cheap pass per column instead of a regex of hundreds of alternatives per row.
const TOKENS = {
  email: { re: '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', norm: (x: string) => `lower(${x})` },
  phone: { re: '\\+?[0-9][0-9 ./()-]{5,}[0-9]', norm: (x: string) => `regexp_replace(${x}, '[^0-9]', '', 'g')` },
  vat: { re: '[A-Za-z]{2}[0-9A-Za-z]{8,13}', norm: (x: string) => `upper(${x})` },
} as const;
/**
 * The words of a text as phrase-scan.ts reads them: ASCII letters lower-cased, every run of ASCII
 * characters other than letters and digits a separator, non-ASCII characters part of words.
 */
const WORDS = (x: string) => `string_to_array(regexp_replace(translate(${x}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
  '[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]+', ' ', 'g'), ' ')`;

/**
 * Scans every text-like column of every table (of the `only` tables when given) for any sampled value.
 * Per table, one pass: the row's text columns joined into one string, three token regexes over it,
 * each token looked up in an indexed temporary table of the sample, and its words looked up by first
 * word in a temporary table of the sampled phrases (names, streets). Only when a table has hits is it
 * scanned again, one pass per column, to say which columns (never which values). Tables are spread
 * over `connect`ed sessions when given.
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
  const phrases = samplePhrases(sample);
  if (!values.length && !phrases.length) return [];
  const findings: Finding[] = [];

  const prepare = async (c: pg.ClientBase) => {
    await c.query('create temporary table if not exists odooops_pii (kind text not null, v text not null, primary key (kind, v))');
    await c.query('truncate odooops_pii');
    await c.query('insert into odooops_pii select * from unnest($1::text[], $2::text[]) on conflict do nothing', [values.map((x) => x[0]), values.map((x) => x[1])]);
    await c.query('analyze odooops_pii');
    // Phrases are found by their first word, then compared whole: one index probe per word of the text.
    await c.query(`create temporary table if not exists odooops_phrase (kind text not null, v text not null, first text not null, n int not null, primary key (kind, v))`);
    await c.query('create index if not exists odooops_phrase_first on odooops_phrase (first)');
    await c.query('truncate odooops_phrase');
    await c.query(`insert into odooops_phrase select k, v, split_part(v, ' ', 1), array_length(string_to_array(v, ' '), 1)
      from unnest($1::text[], $2::text[]) as x(k, v) on conflict do nothing`, [phrases.map((p) => p.kind), phrases.map((p) => p.phrase)]);
    await c.query('analyze odooops_phrase');
  };
  const isPhrase = (k: Kind) => k === 'name' || k === 'street';
  const kinds = KINDS.filter((k) => (isPhrase(k) ? phrases.some((p) => p.kind === k) : values.some((v) => v[0] === k)));
  // A row's words are computed once (OFFSET 0 keeps the planner from recomputing them for every word).
  const from = (t: string, text: string) => (kinds.some(isPhrase) ? `${t} cross join lateral (select ${WORDS(text)} as w offset 0) odooops_w` : t);
  const has = (k: Kind, text: string) => isPhrase(k)
    ? `exists (select 1 from generate_subscripts(odooops_w.w, 1) as g(i) join odooops_phrase p on p.kind = '${k}' and p.first = odooops_w.w[g.i]
        where array_to_string(odooops_w.w[g.i:g.i + p.n - 1], ' ') = p.v)`
    : `exists (select 1 from regexp_matches(${text}, '${TOKENS[k].re}', 'g') m join odooops_pii p on p.kind = '${k}' and p.v = ${TOKENS[k].norm('m[1]')})`;
  const scan = async (c: pg.ClientBase, table: string, cols: string[]) => {
    const t = pg.escapeIdentifier(table);
    // Columns qualified: the words' lateral adds a name to the row.
    const all = `concat_ws(' ', ${cols.map((x) => `${t}.${pg.escapeIdentifier(x)}::text`).join(', ')})`;
    const n = Number((await c.query(`select count(*) as n from ${from(t, all)} where ${kinds.map((k) => has(k, all)).join(' or ')}`)).rows[0].n);
    if (n === 0) return;
    // Which columns: one pass per column, every kind counted in it.
    for (const col of cols) {
      const x = `${t}.${pg.escapeIdentifier(col)}::text`;
      const r = (await c.query(`select ${kinds.map((k) => `count(*) filter (where ${has(k, x)}) as ${k}`).join(', ')} from ${from(t, x)} where ${x} is not null`)).rows[0];
      for (const k of kinds) if (Number(r[k]) > 0) findings.push({ table, column: col, kind: k, rows: Number(r[k]) });
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
