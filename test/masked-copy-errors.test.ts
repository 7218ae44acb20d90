// A table copy of the masked clone that fails explains itself: the table, where in the COPY it failed
// (line, column) without the row's data (the error reaches every member of the project), and the column
// counts that tell a select list from a destination that do not match. Debian's PostgreSQL 15, real
// pg_dump/pg_restore, the clone's own maskedCopy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { defaultMaskProfile, planMask, setMaskKey } from '../server/odoo/mask.ts';
import { maskedCopy } from '../server/odoo/masked-copy.ts';
import { findPgTool, type PgTool } from '../server/odoo/pg-tools.ts';
import { createOdooRole, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';

const PASSWORD = 'masked-copy-errors-pw';
let srv: DebianPostgres;
let tools: { pgDump: PgTool; pgRestore: PgTool };

before(async () => {
  srv = await startDebianPostgres();
  await createOdooRole(srv, 'odoo', PASSWORD);
  tools = { pgDump: await findPgTool('pg_dump', '15'), pgRestore: await findPgTool('pg_restore', '15') };
});

after(async () => {
  await srv?.stop();
});

async function db(name: string, sql?: string) {
  const su = await srv.client();
  await su.query(`create database ${name} owner odoo`);
  await su.end();
  if (sql) {
    const c = await srv.client(name);
    await c.query('set role odoo');
    await c.query(sql);
    await c.end();
  }
  return { host: srv.host, port: srv.port, user: 'odoo', password: PASSWORD, database: name };
}

test('a row the copy\'s table refuses: the table, the COPY line, the column counts; not the row', async () => {
  // The fake ("masked <16 hex digits>") is longer than the column's check allows: the copy refuses the
  // row after reading it whole, and PostgreSQL's context would quote the line, secret note included.
  const from = await db('src_check', `
    create table res_partner_note (id int primary key, ref text check (length(ref) < 12), note text);
    insert into res_partner_note values (1, 'R-1', 'the-secret-note-value'), (2, 'R-2', 'another note');`);
  const into = await db('copy_check');
  const lines: string[] = [];
  await assert.rejects(
    maskedCopy({
      from, into, ...tools, keepFiles: null, parallel: 1, log: async (l) => void lines.push(l), signal: new AbortController().signal,
      profile: { version: 1, columns: { 'res_partner_note.ref': { strategy: 'text' } }, truncate: [] },
    }),
    (err: Error) => {
      assert.match(err.message, /^copying "public"\."res_partner_note" failed: new row for relation "res_partner_note" violates check constraint "res_partner_note_ref_check" \(COPY res_partner_note, line 1\); 3 expressions selected, 3 columns listed for the copy; the source table has 3 columns now, the copy's 3$/);
      assert.ok(!err.message.includes('secret-note') && !err.message.includes('masked '), 'the row\'s data stays out of the error');
      return true;
    },
  );
});

test('a value a column refuses: the COPY line and the column are named, not the value', async () => {
  // A fixed value the column's type cannot take (a varchar(4) column, a longer constant).
  const from = await db('src_len', `
    create table res_partner_code (id int primary key, code varchar(4), note text);
    insert into res_partner_code values (1, 'A1', 'the-secret-note-value');`);
  const into = await db('copy_len');
  await assert.rejects(
    maskedCopy({
      from, into, ...tools, keepFiles: null, parallel: 1, log: async () => {}, signal: new AbortController().signal,
      profile: { version: 1, columns: { 'res_partner_code.code': { strategy: 'fixed', value: 'TOO-LONG-CONSTANT' } }, truncate: [] },
    }),
    (err: Error) => {
      assert.match(err.message, /^copying "public"\."res_partner_code" failed: value too long for type character varying\(4\) \(COPY res_partner_code, line 1, column code\); 3 expressions selected, 3 columns listed for the copy; the source table has 3 columns now, the copy's 3$/);
      assert.ok(!err.message.includes('TOO-LONG') && !err.message.includes('secret-note'));
      return true;
    },
  );
});

test('masking sessions run without JIT: the masked selects are interpreted, not compiled per table', async () => {
  const target = await db('jit_source', `create table res_partner (id serial primary key, name varchar, email varchar);
    insert into res_partner (name, email) select 'Person ' || g, 'p' || g || '@example.com' from generate_series(1, 50) g`);
  const c = new pg.Client(target);
  await c.connect();
  try {
    const plan = planMask(defaultMaskProfile(), new Map([['res_partner', [
      { name: 'id', type: 'int4', nullable: false }, { name: 'name', type: 'varchar', nullable: true }, { name: 'email', type: 'varchar', nullable: true },
    ]]]));
    const m = plan.tables.get('res_partner')!;
    // Every query above cost 0 is compiled where JIT is on: what the masked selects' estimates always were.
    await c.query(`select set_config('jit_above_cost', '0', false), set_config('odooops.mask_key', 'some key', false)`);
    const explain = async () => (await c.query(`explain (analyze) select ${m.select.join(', ')} from res_partner ${m.joins}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
    assert.match(await explain(), /JIT:/, 'this PostgreSQL compiles queries with JIT (the case the setting is for)');
    await setMaskKey(c, 'k'.repeat(22));
    assert.doesNotMatch(await explain(), /JIT:/);
    assert.equal((await c.query(`select current_setting('jit') as j`)).rows[0].j, 'off');
  } finally {
    await c.end();
  }
});
