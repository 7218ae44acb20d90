// Masking personal data of an Odoo database with a declarative profile (contract MaskProfile), as SQL
// expressions over the original columns: the clone copies `SELECT <masked expressions> FROM <table>`
// out of production, so masked columns never land anywhere unmasked. The expressions are plain SQL (no
// functions: nothing is created in production) keyed by a random per-clone key in the session setting
// odooops.mask_key, so a value gets the same fake everywhere in one clone (a partner's email in
// res_partner, mail_message.email_from and res_users.login alike) and different fakes in the next clone.
// Distinct originals stay distinct (64-bit hashes), which keeps unique constraints such as logins valid.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { parse as parseYaml } from 'yaml';
import { MaskProfile, type MaskRule } from '../../contract/index.ts';
import { packageRoot } from '../package-root.ts';

export const defaultMaskProfile = (): MaskProfile =>
  MaskProfile.parse(JSON.parse(readFileSync(join(packageRoot(), 'server', 'odoo', 'mask-profile.default.json'), 'utf8')));

/**
 * The project's profile (ops.projects.mask_profile, set by a project admin), or the default one when
 * it has none (null).
 */
export function projectMaskProfile(stored: unknown): MaskProfile {
  if (stored === null || stored === undefined) return defaultMaskProfile();
  try {
    return parseMaskProfile(stored);
  } catch (err) {
    throw new Error(`the project's ${(err as Error).message}; a project admin sets a valid one with odooops project masking PROJECT --set FILE`);
  }
}

/** Parses a profile given as JSON or YAML text, or as an object; errors name the offending key. */
export function parseMaskProfile(input: unknown): MaskProfile {
  let value = input;
  if (typeof input === 'string') {
    try {
      // YAML is a superset of JSON: one parser takes both.
      value = parseYaml(input);
    } catch (err) {
      throw new Error(`invalid masking profile: not JSON or YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const r = MaskProfile.safeParse(value);
  if (!r.success) throw new Error(`invalid masking profile: ${r.error.issues.map((i) => `${i.path.join('.') || '(profile)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const FIRST = ['Alex', 'Sam', 'Robin', 'Charlie', 'Jordan', 'Taylor', 'Morgan', 'Casey', 'Jamie', 'Riley', 'Avery', 'Quinn', 'Drew', 'Kai', 'Noa', 'Eden'];
// Sixteen of each: one hex digit of the hash picks a word.
const LAST = ['Example', 'Sample', 'Tester', 'Demo', 'Placeholder', 'Mockford', 'Dummy', 'Fakeley', 'Testwood', 'Specimen', 'Proxy', 'Standin', 'Fictional', 'Madeup', 'Surrogate', 'Pretend'];
/**
 * Words the masking itself writes (fake names, "masked <hash>", u<hash>@example.invalid): the
 * verification never samples a phrase made only of them, so a fake can never be taken for an original.
 */
export const MASK_VOCABULARY: ReadonlySet<string> = new Set([...FIRST, ...LAST, 'masked', 'example', 'invalid'].map((w) => w.toLowerCase()));
const lit = (xs: string[]) => `array[${xs.map((x) => pg.escapeLiteral(x)).join(',')}]`;

// Builders of SQL over a value expression v (a column reference, or an expression over one).
// The key's md5 is the one keyed hash core PostgreSQL has that nobody can invert without the key; it
// is the expensive part (OpenSSL context per call), so every value is hashed once: a column's hash is
// computed in a LATERAL subquery (OFFSET 0 keeps the planner from copying it back into every use, and
// lets it serve repeated values, a sender on many messages, from a Memoize cache).
const h = (v: string) => `md5(current_setting('odooops.mask_key') || ${v})`;
// A word by one hex digit of the hash (strpos over the digits: a third of a cast through bit(28)).
const pick = (hash: string, at: number, xs: string[]) => `(${lit(xs)})[strpos('0123456789abcdef', substr(${hash}, ${at}, 1))]`;
// Digits 17-22 of the hash: an address made from the same hash uses 1-16.
const nameFromHash = (hash: string) => `${pick(hash, 17, FIRST)} || ' ' || ${pick(hash, 18, LAST)} || ' ' || substr(${hash}, 19, 4)`;
const addressFromHash = (hash: string) => `'u' || substr(${hash}, 1, 16) || '@example.invalid'`;
/** The hash of a value in a scalar subquery, where no LATERAL can go (inside jsonb_each_text). */
const withHash = (hashed: string, use: (hash: string) => string) => `(select ${use('odooops_n.h')} from (select ${h(hashed)} as h offset 0) odooops_n)`;
const fakeName = (v: string) => `case when ${v} is null or ${v} = '' then ${v} else ${withHash(`lower(${v})`, nameFromHash)} end`;
/**
 * "Name <a@x.com>": the address between the first < and the first > after it (split_part and LIKE
 * work on bytes: the character positions strpos and substr count cost four times as much on 2M rows).
 * The fake is made from a hash, never from the text, so an odd value ("a>b <c>") only changes which
 * part is hashed.
 */
const isNamed = (v: string) => `${v} like '%<_%>%'`;
const angled = (v: string) => `case when ${isNamed(v)} then split_part(split_part(${v}, '<', 2), '>', 1) end`;
/** One address, "a@x.com" or "Name <a@x.com>", from the hash of the (angled) address. */
const oneEmailFromHash = (hash: string, named: string) =>
  `case when ${named} then '"' || ${nameFromHash(hash)} || '" <' || ${addressFromHash(hash)} || '>' else ${addressFromHash(hash)} end`;
/** Comma-separated lists of either, each address hashed once. */
const fakeEmailList = (v: string) => `(select string_agg(${oneEmailFromHash('odooops_y.h', 'odooops_x.a is not null')}, ', ' order by odooops_p.o)
  from regexp_split_to_table(${v}, '\\s*,\\s*') with ordinality as odooops_p(p, o)
  cross join lateral (select ${angled('odooops_p.p')} as a) odooops_x
  cross join lateral (select ${h('lower(btrim(coalesce(odooops_x.a, odooops_p.p)))')} as h offset 0) odooops_y where btrim(odooops_p.p) <> '')`;
const fakeEmail = (v: string) => `case when ${v} is null or btrim(${v}) = '' then ${v} when strpos(${v}, ',') > 0 then ${fakeEmailList(v)}
    else ${withHash(`lower(btrim(coalesce(${angled(v)}, ${v})))`, (hash) => oneEmailFromHash(hash, isNamed(v)))} end`;
/**
 * The table's one LATERAL subquery (OFFSET 0: computed once per row, not copied into every use): the
 * hashes of all its masked emails and names, each column's named with its index (one subquery per
 * column cost as much again as the hashing, ~0.6 µs a row each).
 */
const LATERAL = 'odooops_m';
/** The same fakes for a text column, the address's hash (and whether it was angled) in the table's LATERAL subquery. */
const fakeEmailLateral = (v: string, n: number) => ({
  expr: `case when ${v} is null or btrim(${v}) = '' then ${v} when strpos(${v}, ',') > 0 then ${fakeEmailList(v)}
    else ${oneEmailFromHash(`${LATERAL}.odooops_h${n}`, `${LATERAL}.odooops_named${n}`)} end`,
  lateral: [`${h(`lower(btrim(coalesce(${angled(v)}, ${v})))`)} as odooops_h${n}`, `${isNamed(v)} as odooops_named${n}`],
});
/** A person's name in a text column, its hash in the table's LATERAL subquery. */
const fakeNameLateral = (v: string, n: number) => ({
  expr: `case when ${v} is null or ${v} = '' then ${v} else ${nameFromHash(`${LATERAL}.odooops_h${n}`)} end`,
  lateral: [`${h(`lower(${v})`)} as odooops_h${n}`],
});
// "+00 0…": no real number starts with 000 once reduced to digits, so a fake can never equal (or be
// verified as) a real one; a plausible-looking range such as +32 499 collided with real numbers.
// The digits of a value: for the usual +, spaces, dots, dashes and brackets, those deleted; otherwise the
// characters that are not digits, deleted (nested translates: a third of a regex's time, but four
// times the check and the replaces, and phones are most of a partner's masking).
const digitsOf = (v: string) => `case when ${v} ~ '^[0-9 +().-]*$' then ${['+', ' ', '(', ')', '.', '-'].reduce((e, ch) => `replace(${e}, '${ch}', '')`, v)}
  else translate(${v}, translate(${v}, '0123456789', ''), '') end`;
// Nine decimal digits from 32 bits of the hash (a cast: half the time of translating hex letters).
const fakePhone = (v: string) => `case when ${v} is null or btrim(${v}) = '' then ${v}
  else '+00 0' || lpad(((('x' || substr(${h(digitsOf(v))}, 1, 8))::bit(32)::bigint) % 1000000000)::text, 9, '0') end`;
const fakeText = (v: string) => `case when ${v} is null or ${v} = '' then ${v} else 'masked ' || substr(${h(v)}, 1, 16) end`;
const FAKE = { name: fakeName, email: fakeEmail, phone: fakePhone, text: fakeText } as const;

/**
 * The session settings every masking session needs: the key (the same in all of one clone's sessions),
 * and no JIT. The masked selects' subqueries make the planner's estimates huge, so PostgreSQL (jit = on
 * by default where it is built with LLVM, as Debian's is) compiled each one with inlining and
 * optimization: 1.5-3 s of CPU per table or page range, for expressions that run faster interpreted
 * (a res_partner range: 5.8-6.0 s with JIT, 2.6-3.5 s without).
 */
export const setMaskKey = (c: pg.ClientBase, key: string) => c.query(`select set_config('odooops.mask_key', $1, false), set_config('jit', 'off', false)`, [key]);

/** A column as the copy sees it: type is pg_type.typname (text, varchar, bpchar, jsonb, int4...). */
export interface Column {
  name: string;
  type: string;
  nullable: boolean;
}

const TEXTUAL = new Set(['text', 'varchar', 'bpchar']);

/** A row filter as SQL with literals (COPY (SELECT ...) takes no parameters); values are quoted. */
function filterSql(rule: MaskRule): string {
  const w = rule.where;
  if (!w) return 'true';
  const col = pg.escapeIdentifier(w.column);
  const list = (v: unknown) => `array[${(Array.isArray(v) ? v : [v]).map((x) => pg.escapeLiteral(String(x))).join(',')}]::text[]`;
  switch (w.op) {
    case 'eq': return `${col}::text = ${pg.escapeLiteral(String(w.value))}`;
    case 'ne': return `${col}::text is distinct from ${pg.escapeLiteral(String(w.value))}`;
    case 'in': return `${col}::text = any(${list(w.value)})`;
    case 'not_in': return `not coalesce(${col}::text = any(${list(w.value)}), false)`;
    case 'is_null': return `${col} is null`;
    case 'not_null': return `${col} is not null`;
  }
}

/**
 * The masked value of a column as SQL (with what it needs in the table's LATERAL subquery, named by the
 * column's index n), or null when the rule keeps it or the type cannot take it.
 */
function valueSql(rule: MaskRule, c: Column, n: number): { expr: string; lateral?: string[] } | null {
  const col = pg.escapeIdentifier(c.name);
  if (rule.strategy === 'keep') return null;
  if (rule.strategy === 'null') {
    if (c.nullable) return { expr: 'null' };
    // A NOT NULL column cannot be emptied: replace the value instead.
    return TEXTUAL.has(c.type) ? { expr: fakeText(`${col}::text`) } : null;
  }
  if (rule.strategy === 'fixed') {
    const v = pg.escapeLiteral(rule.value!);
    if (TEXTUAL.has(c.type)) return { expr: v };
    return c.type === 'jsonb' ? { expr: `jsonb_build_object('en_US', ${v}::text)` } : null;
  }
  if (rule.strategy === 'email' && TEXTUAL.has(c.type)) return fakeEmailLateral(col, n);
  if (rule.strategy === 'name' && TEXTUAL.has(c.type)) return fakeNameLateral(col, n);
  const f = FAKE[rule.strategy];
  if (TEXTUAL.has(c.type)) return { expr: f(col) };
  // Translatable fields (Odoo 16+) are jsonb {"en_US": "...", ...}: mask every language's value.
  if (c.type === 'jsonb') return { expr: `(select jsonb_object_agg(odooops_e.k, ${f('odooops_e.v')}) from jsonb_each_text(${col}) as odooops_e(k, v))` };
  return null;
}

export interface TableMask {
  /** One SQL expression per column, in the order given: the masked value or the column itself. */
  select: string[];
  /** What follows the table in FROM: LATERAL subqueries some expressions use. */
  joins: string;
  /** "column:strategy" of the masked columns, for the mask.log. */
  masked: string[];
}

export interface MaskPlan {
  tables: Map<string, TableMask>;
  /** Profile entries this database lacks (another Odoo version, a module not installed). */
  skipped: string[];
  /** Profile entries a column's type cannot take, left as they are (logged). */
  untouched: string[];
}

/**
 * Rows no rule masks, by table: true for a whole table, else an SQL condition on its row (the
 * companies' own data, when the profile keeps it).
 */
export type KeptRows = Record<string, true | string>;

/**
 * The companies' own contact data a profile keeps readable (see MaskProfile.companies): res_company
 * whole, and the rows of res_partner that are companies' partners. Nothing when the profile masks it.
 */
export function companyRows(profile: MaskProfile, tables: Map<string, Column[]>): KeptRows {
  if (profile.companies === 'mask' || !tables.has('res_company')) return {};
  const partnerOf = tables.get('res_company')!.some((c) => c.name === 'partner_id');
  return {
    res_company: true,
    ...(partnerOf ? { res_partner: '"res_partner".id in (select odooops_c.partner_id from res_company odooops_c where odooops_c.partner_id is not null)' } : {}),
  };
}

/**
 * What to select from each public table of the source to get its masked rows. Columns and tables the
 * database lacks are skipped; so are columns whose type a strategy cannot take.
 */
export function planMask(profile: MaskProfile, tables: Map<string, Column[]>, keep: KeptRows = {}): MaskPlan {
  const plan: MaskPlan = { tables: new Map(), skipped: [], untouched: [] };
  const rules = new Map<string, Map<string, MaskRule>>();
  for (const [key, rule] of Object.entries(profile.columns)) {
    const [table, column] = key.split('.') as [string, string];
    if (keep[table] === true) continue;
    if (!tables.get(table)?.some((c) => c.name === column)) {
      plan.skipped.push(key);
      continue;
    }
    rules.set(table, (rules.get(table) ?? new Map()).set(column, rule));
  }
  for (const [table, byColumn] of rules) {
    const masked: string[] = [];
    const joins: string[] = [];
    const select = tables.get(table)!.map((c, i) => {
      const col = pg.escapeIdentifier(c.name);
      const rule = byColumn.get(c.name);
      if (!rule) return col;
      const v = valueSql(rule, c, i);
      if (v === null) {
        if (rule.strategy !== 'keep') plan.untouched.push(`${table}.${c.name} (${c.type}) cannot take strategy ${rule.strategy}`);
        return col;
      }
      masked.push(`${c.name}:${rule.strategy}`);
      if (v.lateral) joins.push(...v.lateral);
      const keptRows = typeof keep[table] === 'string' ? `not coalesce(${keep[table]}, false)` : null;
      const when = [...(rule.where ? [filterSql(rule)] : []), ...(keptRows ? [keptRows] : [])];
      return when.length ? `case when ${when.join(' and ')} then ${v.expr} else ${col} end` : v.expr;
    });
    if (masked.length) plan.tables.set(table, { select, joins: joins.length ? `cross join lateral (select ${joins.join(', ')} offset 0) ${LATERAL}` : '', masked });
  }
  return plan;
}
