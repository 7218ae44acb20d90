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

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export interface Finding {
  table: string;
  column: string;
  kind: string;
  rows: number;
}

/** Scans every text-like column of every table for any sampled value (as a substring). */
export async function findPii(db: pg.ClientBase, sample: PiiSample): Promise<Finding[]> {
  const { rows } = await db.query(`
    select c.table_name as t, c.column_name as c from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema = 'public' and c.data_type in ('text', 'character varying', 'character', 'jsonb')
    order by 1, 2`);
  const byTable = new Map<string, string[]>();
  for (const r of rows as { t: string; c: string }[]) byTable.set(r.t, [...(byTable.get(r.t) ?? []), r.c]);
  const kinds = ([['email', sample.emails], ['phone', sample.phones], ['vat', sample.vats]] as const).filter(([, v]) => v.length);
  const findings: Finding[] = [];
  for (const [table, cols] of byTable) {
    for (const [kind, values] of kinds) {
      const pattern = values.map(escapeRegex).join('|');
      const t = pg.escapeIdentifier(table);
      // One pass over the table per kind: a count per column.
      const select = cols.map((c, i) => `count(*) filter (where ${pg.escapeIdentifier(c)}::text ~* $1) as c${i}`).join(', ');
      const r = (await db.query(`select ${select} from ${t}`, [pattern])).rows[0];
      cols.forEach((c, i) => {
        const n = Number(r[`c${i}`]);
        if (n > 0) findings.push({ table, column: c, kind, rows: n });
      });
    }
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
