// A masked copy of an Odoo database in one streamed pass: the schema with pg_dump/pg_restore, then each
// table's rows as `COPY (SELECT <masked expressions> FROM t) TO STDOUT` from the source into
// `COPY t FROM STDIN` of the new database, scanned for sampled personal values on the way, then the
// indexes and constraints (pg_restore --jobs). Masked columns never exist unmasked outside the source,
// no UPDATE rewrites the copy, and the scan sees every byte the copy receives. All source sessions
// share one exported snapshot, so the copy is as consistent as pg_dump's.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { MaskProfile } from '../../contract/index.ts';
import { mib } from './inspect.ts';
import { companyRows, planMask, setMaskKey, type Column } from './mask.ts';
import { withFloors } from './mask-policy.ts';
import { connectionArgs, pgEnv, spawnTool, type PgTarget, type PgTool } from './pg-tools.ts';
import { runTempDir } from '../infra/run-user.ts';
import { PiiScanner, type PiiSample } from './pii-scan.ts';
import { samplePii } from './verify.ts';

export interface MaskedCopyOptions {
  from: PgTarget;
  into: PgTarget;
  pgDump: PgTool;
  pgRestore: PgTool;
  profile: MaskProfile;
  /**
   * SQL condition on ir_attachment rows whose stored file travels (or made from the source's public
   * tables and their columns); null: every file travels.
   */
  keepFiles: string | null | ((tables: Map<string, Column[]>) => string);
  /** ir_attachment columns (as SQL) for rows whose file stays behind; by default they are emptied. */
  standIn?: { columns: Record<string, string>; label: string };
  /** Sessions copying at once (each is a reader on the source and a writer on the copy). */
  parallel: number;
  log: (line: string) => Promise<void>;
  signal: AbortSignal;
}

export interface MaskedCopyResult {
  sample: PiiSample;
  /** Table → sampled source values found in the rows copied into it. */
  hits: Map<string, number>;
  /** Filestore paths (store_fname) of the source's files the copy's attachments point to. */
  keptFiles: string[];
  /** Attachments whose file stayed behind. */
  leftFiles: number;
  tables: number;
  rows: number;
  bytes: number;
}

interface TableInfo {
  /** As regclass prints it: bare for public tables, schema-qualified (and quoted as needed) otherwise. */
  name: string;
  schema: string;
  table: string;
  pages: number;
  bytes: number;
  columns: Column[];
}

interface Unit {
  info: TableInfo;
  /** The select list (one expression per listed column) and what follows the table in FROM. */
  select: string[];
  joins: string;
  /** A range of heap pages [from, to) (to null: to the end), so one big table keeps every session busy. */
  pages: [number, number | null] | null;
  bytes: number;
}

/**
 * Sessions a clone copies with. Each is a pipeline of three processes (a source session computing the
 * masked rows, the worker scanning them, a copy session writing them) whose slowest stage, the masking,
 * leaves the others waiting: three of them kept two cores busy where two left a third of them idle
 * (bench:clone). On the production database server: more would take more of its CPU from production.
 */
export const COPY_SESSIONS = 3;

const qualified = (t: { schema: string; table: string }) => `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.table)}`;

export async function maskedCopy(o: MaskedCopyOptions): Promise<MaskedCopyResult> {
  const abort = new AbortController();
  const onAbort = () => abort.abort(o.signal.reason);
  o.signal.addEventListener('abort', onAbort, { once: true });
  const clients: pg.Client[] = [];
  const connect = async (t: PgTarget) => {
    const c = new pg.Client({ host: t.host, port: t.port, user: t.user, password: t.password, database: t.database, application_name: 'odooops' });
    c.on('error', () => {});
    clients.push(c);
    await c.connect();
    return c;
  };
  abort.signal.addEventListener('abort', () => clients.forEach((c) => void c.end().catch(() => {})), { once: true });
  // pg_dump writes the schema here as the run user.
  const scratch = await runTempDir('odooops-schema-');
  try {
    const snap = await connect(o.from);
    await snap.query('begin isolation level repeatable read, read only');
    const snapshot = (await snap.query('select pg_export_snapshot() as s')).rows[0].s as string;
    // 128 bits, in 22 characters: key and value fit one 64-byte md5 block for most values (half the work).
    const key = randomBytes(16).toString('base64url');
    await setMaskKey(snap, key);

    // The floors hold whatever profile the caller passes: no password hash or TOTP secret leaves production.
    const profile = withFloors(o.profile);
    const tables = await listTables(snap);
    const fixed = Object.values(profile.columns).flatMap((r) => (r.strategy === 'fixed' && r.value ? [r.value] : []));
    const sample = await samplePii(snap, 200, fixed);
    await o.log(`sampled ${sample.emails.length} emails, ${sample.phones.length} phone numbers, ${sample.vats.length} VAT numbers, ${sample.names?.length ?? 0} person names and ${sample.streets?.length ?? 0} street lines of the source to check every copied row against`);
    const scanner = new PiiScanner(sample);

    // The plan: masked expressions per public table, attachments' files by policy, emptied tables.
    const publicTables = new Map(tables.filter((t) => t.schema === 'public').map((t) => [t.table, t.columns]));
    const kept = companyRows(profile, publicTables);
    const plan = planMask(profile, publicTables, kept);
    for (const u of plan.untouched) await o.log(`mask.log: ${u}: left as it is`);
    if (Object.keys(kept).length) await o.log(`mask.log: the companies' own contact data (res_company and the companies' partners) is kept readable, as the profile says (companies: keep)`);
    const selects = new Map([...plan.tables].map(([t, m]) => [t, { select: m.select, joins: m.joins }]));
    let keptFiles: string[] = [];
    let leftFiles = 0;
    const attachments = publicTables.get('ir_attachment');
    if (attachments?.some((c) => c.name === 'store_fname')) {
      const keepFiles = typeof o.keepFiles === 'function' ? o.keepFiles(publicTables) : o.keepFiles;
      const keep = keepFiles === null ? 'true' : `(store_fname is null or coalesce(${keepFiles}, false))`;
      keptFiles = (await snap.query(`select distinct store_fname from ir_attachment where store_fname is not null and ${keep}`)).rows.map((r) => r.store_fname as string);
      if (keepFiles !== null) {
        leftFiles = Number((await snap.query(`select count(*) as n from ir_attachment where not ${keep}`)).rows[0].n);
        // Attachments whose file stays behind become empty (or stand-ins), so Odoo finds no missing files.
        const override = o.standIn?.columns ?? { store_fname: 'null', checksum: 'null', file_size: '0', db_datas: 'null' };
        const base = selects.get('ir_attachment') ?? { select: attachments.map((c) => pg.escapeIdentifier(c.name)), joins: '' };
        selects.set('ir_attachment', {
          joins: base.joins,
          select: attachments.map((c, i) => (Object.hasOwn(override, c.name) ? `case when ${keep} then ${base.select[i]} else ${override[c.name]} end` : base.select[i]!)),
        });
        await o.log(`mask.log: ${keptFiles.length} filestore files travel, ${leftFiles} business attachments ${o.standIn?.label ?? 'emptied'}`);
      }
    }
    const emptied = emptiedTables(profile.truncate, await foreignKeys(snap), tables);
    for (const t of emptied) await o.log(`mask.log: ${t} emptied${profile.truncate.includes(t) ? '' : ' (it refers to an emptied table)'}`);

    // Schema first, without indexes and constraints (they are built once the rows are in).
    const schemaFile = join(scratch, 'schema.dump');
    const env = { from: pgEnv(o.from), into: pgEnv(o.into) };
    await spawnTool(o.pgDump, ['--format=custom', '--schema-only', '--no-owner', `--snapshot=${snapshot}`, ...connectionArgs(o.from), '--dbname', o.from.database, '--file', schemaFile], { env: env.from, signal: abort.signal }).done;
    const restore = ['--no-owner', '--no-privileges', '--exit-on-error', ...connectionArgs(o.into), '--dbname', o.into.database];
    await spawnTool(o.pgRestore, [...restore, '--section=pre-data', schemaFile], { env: env.into, signal: abort.signal }).done;

    const units = splitIntoUnits(tables.filter((t) => !emptied.has(t.name)), selects, o.parallel);
    const perTable = new Map<string, { rows: number; left: number }>();
    for (const u of units) {
      const k = qualified(u.info);
      perTable.set(k, { rows: 0, left: (perTable.get(k)?.left ?? 0) + 1 });
    }
    const total = units.reduce((n, u) => n + u.bytes, 0);
    let done = 0;
    let copiedTables = 0;
    let rows = 0;
    let lastProgress = Date.now();
    const queue = [...units];
    const lane = async () => {
      const src = await connect(o.from);
      await src.query('begin isolation level repeatable read, read only');
      await src.query(`set transaction snapshot ${pg.escapeLiteral(snapshot)}`);
      await setMaskKey(src, key);
      const dst = await connect(o.into);
      for (let u = queue.shift(); u; u = queue.shift()) {
        const t = qualified(u.info);
        const where = u.pages ? `where ${t}.ctid >= '(${u.pages[0]},0)'::tid${u.pages[1] === null ? '' : ` and ${t}.ctid < '(${u.pages[1]},0)'::tid`}` : '';
        const cols = u.info.columns.map((c) => pg.escapeIdentifier(c.name)).join(', ');
        if (u.select.length !== u.info.columns.length) {
          throw new Error(`copying ${t} failed before a row was read: ${u.select.length} expressions selected for ${u.info.columns.length} columns listed (the masking plan was made for another column list); nothing was copied`);
        }
        const out = src.query(copyTo(`copy (select ${u.select.join(', ')} from ${t} ${u.joins} ${where}) to stdout with (format csv)`));
        const into = dst.query(copyFrom(`copy ${t} (${cols}) from stdin with (format csv)`));
        try {
          await pipeline(out, scanner.stream(u.info.name), into, { signal: abort.signal });
        } catch (err) {
          if (abort.signal.aborted) throw err;
          throw new Error(`copying ${t} failed: ${await copyFailure(err as Error, u, () => Promise.all([connect(o.from), connect(o.into)]))}`);
        }
        const entry = perTable.get(t)!;
        entry.rows += Number(into.rowCount ?? 0);
        rows += Number(into.rowCount ?? 0);
        done += u.bytes;
        if (--entry.left === 0) {
          copiedTables++;
          const masked = u.info.schema === 'public' ? plan.tables.get(u.info.table) : undefined;
          if (masked) await o.log(`mask.log: ${u.info.table}: ${entry.rows} rows, ${masked.masked.join(' ')}`);
        }
        if (Date.now() - lastProgress > 2000) {
          lastProgress = Date.now();
          await o.log(`copying: ${Math.round((done / Math.max(total, 1)) * 100)} % (${copiedTables} of ${perTable.size} tables, ${mib(scanner.bytes)} streamed)`);
        }
      }
      await src.query('commit');
    };
    await Promise.all(Array.from({ length: Math.max(1, o.parallel) }, () => lane().catch((err) => {
      abort.abort(err);
      throw err;
    })));

    // Sequences as the snapshot saw them, then indexes, constraints and triggers.
    const seqs = (await snap.query(`select format('%I.%I', schemaname, sequencename) as s, last_value as v from pg_sequences where last_value is not null`)).rows;
    await snap.query('commit');
    const dst = await connect(o.into);
    await dst.query('select setval(x.s::regclass, x.v, true) from unnest($1::text[], $2::bigint[]) as x(s, v)', [seqs.map((r) => r.s), seqs.map((r) => r.v)]);
    await spawnTool(o.pgRestore, [...restore, '--section=post-data', `--jobs=${Math.max(1, o.parallel)}`, schemaFile], { env: env.into, signal: abort.signal }).done;
    await o.log(`mask.log: ${plan.tables.size} tables masked (${[...plan.tables.values()].reduce((n, t) => n + t.masked.length, 0)} columns); not in this database: ${plan.skipped.length} profile entries`);
    return { sample, hits: scanner.hits, keptFiles, leftFiles, tables: perTable.size, rows, bytes: scanner.bytes };
  } catch (err) {
    if (!abort.signal.aborted) abort.abort(err);
    // An abort by the run shows as whatever the closed connections said: report the cause instead.
    throw o.signal.aborted ? (o.signal.reason ?? err) : err;
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * What a failed table copy says: PostgreSQL's message, where in the COPY it failed (line and column,
 * without the row's data: it reaches the run's error, which every member reads), and the column counts
 * that tell a mismatch: expressions selected, columns listed for the copy, and the columns the source and
 * the copy's table have now (a column added or dropped since the listing shows here).
 */
async function copyFailure(err: Error, u: Unit, connect: () => Promise<pg.Client[]>): Promise<string> {
  const e = err as Error & { where?: string };
  const where = e.where?.split('\n').map((l) => l.replace(/^(COPY [^,:]+(?:, line \d+)?(?:, column [^:]+)?):.*$/s, '$1')).find((l) => l.startsWith('COPY'));
  // Fresh sessions: the lane's own are mid-COPY or in an aborted transaction, and they would see the
  // snapshot, not what the tables have now.
  const now = await connect().then(
    (cs) => Promise.all(cs.map((c) => c.query(
      `select count(*)::int as n from pg_attribute where attrelid = to_regclass($1) and attnum > 0 and not attisdropped and attgenerated = ''`,
      [`${pg.escapeIdentifier(u.info.schema)}.${pg.escapeIdentifier(u.info.table)}`],
    ).then((r) => String(r.rows[0].n), () => 'unknown').finally(() => c.end().catch(() => {})))),
    () => ['unknown', 'unknown'],
  );
  return `${e.message}${where ? ` (${where})` : ''}; ${u.select.length} expressions selected, ${u.info.columns.length} columns listed for the copy; the source table has ${now[0]} columns now, the copy's ${now[1]}`;
}

/** Ordinary tables of the user's schemas (not extensions' own), with their copyable columns. */
async function listTables(c: pg.ClientBase): Promise<TableInfo[]> {
  const { rows } = await c.query(`
    select format('%s', c.oid::regclass) as name, n.nspname as schema, c.relname as table,
           (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint as pages,
           pg_total_relation_size(c.oid)::bigint as bytes,
           json_agg(json_build_object('name', a.attname, 'type', t.typname, 'nullable', not a.attnotnull) order by a.attnum) as columns
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
    join pg_type t on t.oid = a.atttypid
    where c.relkind = 'r' and n.nspname <> 'information_schema' and n.nspname not like 'pg\\_%'
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    group by 1, 2, 3, 4, 5`);
  return rows.map((r) => ({ name: r.name, schema: r.schema, table: r.table, pages: Number(r.pages), bytes: Number(r.bytes), columns: r.columns }));
}

async function foreignKeys(c: pg.ClientBase): Promise<[string, string][]> {
  const { rows } = await c.query(`
    select format('%s', conrelid::regclass) as child, format('%s', confrelid::regclass) as parent
    from pg_constraint where contype = 'f' and conrelid <> confrelid`);
  return rows.map((r) => [r.child, r.parent]);
}

/** The profile's tables to empty, plus every table that refers to one (as TRUNCATE ... CASCADE would). */
function emptiedTables(truncate: string[], fks: [string, string][], tables: TableInfo[]): Set<string> {
  const names = new Set(tables.map((t) => t.name));
  const out = new Set(truncate.filter((t) => names.has(t)));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [child, parent] of fks) {
      if (out.has(parent) && !out.has(child) && names.has(child)) {
        out.add(child);
        grew = true;
      }
    }
  }
  return out;
}

/** Units of work, biggest first; tables bigger than a fair share are cut into ranges of pages. */
function splitIntoUnits(tables: TableInfo[], selects: Map<string, { select: string[]; joins: string }>, parallel: number): Unit[] {
  const total = tables.reduce((n, t) => n + t.bytes, 0);
  // Enough pieces that the last one to finish does not leave the other sessions idle for long.
  const share = Math.max(32 << 20, total / (parallel * 4));
  const units: Unit[] = [];
  for (const info of tables) {
    const planned = info.schema === 'public' ? selects.get(info.table) : undefined;
    const select = planned?.select ?? info.columns.map((c) => pg.escapeIdentifier(c.name));
    const joins = planned?.joins ?? '';
    const pieces = info.pages > 0 ? Math.min(Math.ceil(info.bytes / share), Math.ceil(info.pages / 128)) : 1;
    if (pieces <= 1) {
      units.push({ info, select, joins, pages: null, bytes: info.bytes });
      continue;
    }
    const step = Math.ceil(info.pages / pieces);
    for (let i = 0; i < pieces; i++) {
      units.push({ info, select, joins, pages: [i * step, i === pieces - 1 ? null : (i + 1) * step], bytes: info.bytes / pieces });
    }
  }
  return units.sort((a, b) => b.bytes - a.bytes);
}
