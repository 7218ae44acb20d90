// Checks on a neutralized, masked copy before it may leave the production server: no sampled original
// email, phone or VAT value remains in any text column; only the autovacuum cron is active; only the
// dummy mail server is active. Findings name tables and columns, never the values.
import pg from 'pg';

export interface PiiSample {
  emails: string[];
  phones: string[];
  vats: string[];
}

/** Samples personal values of the unmasked copy (kept in memory only, never logged). */
export async function samplePii(db: pg.ClientBase, perKind = 200): Promise<PiiSample> {
  const pick = async (sql: string) => {
    try {
      return (await db.query(sql, [perKind])).rows.map((r) => String(r.v)).filter((v) => v.trim().length >= 5);
    } catch (err) {
      if (['42P01', '42703'].includes((err as { code?: string }).code ?? '')) return [];
      throw err;
    }
  };
  // Spread over the table (ordered by a hash, not alphabetically), the same sample for the same data.
  const emails = await pick(`select v from (select distinct lower(email) as v from res_partner where email like '%@%') x order by md5(v) limit $1`);
  emails.push(...(await pick(`select v from (select distinct lower(login) as v from res_users where login like '%@%') x order by md5(v) limit $1`)));
  const phones = await pick(`select v from (select distinct v from (select phone as v from res_partner union all select mobile from res_partner) y where v is not null) x order by md5(v) limit $1`);
  const vats = await pick(`select v from (select distinct vat as v from res_partner where vat is not null) x order by md5(v) limit $1`);
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
  email: { re: '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}', pre: `like '%@%'`, norm: (x: string) => `lower(${x})` },
  phone: { re: '\\+?[0-9][0-9 ./()-]{5,}[0-9]', pre: `~ '[0-9]{2}'`, norm: (x: string) => `regexp_replace(${x}, '[^0-9]', '', 'g')` },
  vat: { re: '[A-Za-z]{2}[0-9A-Za-z]{8,13}', pre: `~ '[0-9]{8}'`, norm: (x: string) => `upper(${x})` },
} as const;
const normalize = {
  email: (v: string) => v.toLowerCase(),
  phone: (v: string) => v.replace(/[^0-9]/g, ''),
  vat: (v: string) => v.toUpperCase(),
};

/** Scans every text-like column of every table for any sampled value. */
export async function findPii(db: pg.ClientBase, sample: PiiSample): Promise<Finding[]> {
  const { rows } = await db.query(`
    select c.table_name as t, c.column_name as c from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema = 'public' and c.data_type in ('text', 'character varying', 'character', 'jsonb')
    order by 1, 2`);
  const byTable = new Map<string, string[]>();
  for (const r of rows as { t: string; c: string }[]) byTable.set(r.t, [...(byTable.get(r.t) ?? []), r.c]);
  const kinds = (['email', 'phone', 'vat'] as const)
    .map((k) => [k, [...new Set({ email: sample.emails, phone: sample.phones, vat: sample.vats }[k].map(normalize[k]))].filter((v) => v.length >= 5)] as const)
    .filter(([, v]) => v.length);
  const findings: Finding[] = [];
  for (const [table, cols] of byTable) {
    const t = pg.escapeIdentifier(table);
    // One pass over the table: per column and kind, the rows holding a sampled value.
    const params: unknown[] = [];
    const parts: string[] = [];
    const names: [string, string][] = [];
    for (const [kind, values] of kinds) {
      params.push(values);
      const p = `$${params.length}::text[]`;
      const k = TOKENS[kind];
      for (const c of cols) {
        const col = `${pg.escapeIdentifier(c)}::text`;
        parts.push(`count(*) filter (where ${col} ${k.pre} and exists (
          select 1 from regexp_matches(${col}, '${k.re}', 'g') m where ${k.norm('m[1]')} in (select unnest(${p}))))`);
        names.push([c, kind]);
      }
    }
    if (!parts.length) continue;
    const r = (await db.query(`select ${parts.map((x, i) => `${x} as c${i}`).join(', ')} from ${t}`, params)).rows[0];
    names.forEach(([column, kind], i) => {
      const n = Number(r[`c${i}`]);
      if (n > 0) findings.push({ table, column, kind, rows: n });
    });
  }
  return findings;
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
