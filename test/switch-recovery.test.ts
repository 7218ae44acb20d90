// A worker killed between the steps of a switch (server/odoo/switch.ts): every window between two of
// switchOver's renames and drops is set up on a real PostgreSQL and a real directory tree exactly as the
// dead worker left it, then the leftovers pass of the next attempt (removeLeftovers, what restoreBackup
// runs first) must give back production untouched when the switch had not reached its point of no return
// (the previous database dropped), and the new copy after it, with no side copy left either way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createDatabaseError, removeLeftovers, removeStaleScratch, sideDir, sideName } from '../server/odoo/switch.ts';
import { labelOf, makeLabelledDb, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';

let srv: DebianPostgres;
let c: pg.Client;
let root: string;

before(async () => {
  srv = await startDebianPostgres();
  c = await srv.client();
  root = mkdtempSync(join(tmpdir(), 'odooops-switch-'));
});
after(async () => {
  await c?.end();
  await srv?.stop();
  rmSync(root, { recursive: true, force: true });
});

const RUN = 4242;
const makeDb = (name: string, who: string) => makeLabelledDb(c, (db) => srv.client(db), name, who);
const whoIs = (db: string) => labelOf(srv, db);
function makeDir(path: string, who: string) {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'who'), who);
}
const sideDbs = async (db: string) => (await c.query(`select datname from pg_database where datname like $1 order by 1`, [`${db}\\_odooops\\_%`])).rows.map((r) => r.datname);
const sideDirsOf = (fs: string) => readdirSync(root).filter((e) => e.startsWith(`${fs.split('/').at(-1)}.odooops-`));

/** Production and a finished new copy beside it, as restoreBackup has them just before switchOver. */
async function beforeSwitch(db: string) {
  const fs = join(root, db);
  await makeDb(db, 'prod');
  makeDir(fs, 'prod');
  await makeDb(sideName(db, 'new', RUN), 'new');
  makeDir(sideDir(fs, 'new', RUN), 'new');
  return fs;
}

/** switchOver's steps, in its order: a worker killed after step k left the first k done. */
function switchSteps(db: string, fs: string) {
  const oldDb = sideName(db, 'old', RUN);
  const newDb = sideName(db, 'new', RUN);
  return [
    () => c.query(`alter database "${db}" rename to "${oldDb}"`),
    () => c.query(`alter database "${newDb}" rename to "${db}"`),
    async () => renameSync(fs, sideDir(fs, 'old', RUN)),
    async () => renameSync(sideDir(fs, 'new', RUN), fs),
    () => c.query(`drop database "${oldDb}"`),
    async () => rmSync(sideDir(fs, 'old', RUN), { recursive: true }),
  ];
}

for (let k = 0; k <= 6; k++) {
  // The previous database is dropped in step 5: before that the run had not finished.
  const expected = k < 5 ? 'prod' : 'new';
  test(`killed after ${k} of the switch's 6 steps: the retry finds ${expected === 'prod' ? 'production as it was' : 'the switch completed'}, no side copy`, async () => {
    const db = `sw_${k}`;
    const fs = await beforeSwitch(db);
    for (const step of switchSteps(db, fs).slice(0, k)) await step();
    const said: string[] = [];
    // The run's own next attempt: its id is "running", its earlier attempt's copies are leftovers all the same.
    await removeLeftovers(c, db, fs, ['new', 'old'], { runId: RUN, isActive: async () => true, say: async (l) => void said.push(l) });
    assert.equal(await whoIs(db), expected, `${db} after recovery`);
    assert.equal(readFileSync(join(fs, 'who'), 'utf8'), expected, `${fs} after recovery`);
    assert.deepEqual(await sideDbs(db), []);
    assert.deepEqual(sideDirsOf(fs), []);
    if (k >= 1 && k <= 4) assert.match(said.join('\n'), new RegExp(`run ${RUN} was stopped in the middle of its switch: put ${db}`));
  });
}

test('another run\'s switch is left alone while that run is running; recovered once it is not', async () => {
  const db = 'sw_other';
  const fs = await beforeSwitch(db);
  for (const step of switchSteps(db, fs).slice(0, 3)) await step();
  const before = [await sideDbs(db), sideDirsOf(fs)];
  await removeLeftovers(c, db, fs, ['new', 'old'], { runId: RUN + 1, isActive: async (id) => id === RUN });
  assert.deepEqual([await sideDbs(db), sideDirsOf(fs)], before, 'nothing of a running run is touched');
  assert.ok(!existsSync(fs), 'still mid-switch');
  await removeLeftovers(c, db, fs, ['new', 'old'], { runId: RUN + 1, isActive: async () => false });
  assert.equal(await whoIs(db), 'prod');
  assert.equal(readFileSync(join(fs, 'who'), 'utf8'), 'prod');
  assert.deepEqual(await sideDbs(db), []);
});

test('a state no switch leaves is refused with nothing changed: a previous copy is never dropped on a guess', async () => {
  const db = 'sw_odd';
  const fs = await beforeSwitch(db);
  await makeDb(sideName(db, 'old', RUN), 'older');
  const before = await sideDbs(db);
  await assert.rejects(removeLeftovers(c, db, fs, ['new', 'old'], { runId: RUN, isActive: async () => false }),
    new RegExp(`run ${RUN} left ${db}, ${db}_odooops_old_${RUN} and ${db}_odooops_new_${RUN} at once, which no interrupted switch leaves; nothing was changed`));
  assert.deepEqual(await sideDbs(db), before);
  assert.equal(await whoIs(db), 'prod');
  assert.equal(await whoIs(sideName(db, 'old', RUN)), 'older');
});

test('the clone kinds (mask, src) of the run\'s own earlier attempt are dropped; a running run\'s stay', async () => {
  const db = 'sw_src';
  await makeDb(db, 'prod');
  for (const [kind, run] of [['mask', RUN], ['src', RUN], ['mask', 7]] as const) await makeDb(sideName(db, kind, run), 'copy');
  const removed = await removeLeftovers(c, db, null, ['mask', 'src'], { runId: RUN, isActive: async () => true });
  assert.deepEqual(removed.sort(), [sideName(db, 'mask', RUN), sideName(db, 'src', RUN)]);
  assert.deepEqual(await sideDbs(db), [sideName(db, 'mask', 7)]);
  assert.equal(await whoIs(db), 'prod');
});

test('scratch directories: the run\'s own earlier ones and stopped runs\' go, a running run\'s and other prefixes stay', async () => {
  const prefix = `odooops-test-scratch-${process.pid}-`;
  const mine = mkdtempSync(join(tmpdir(), `${prefix}${RUN}-`));
  const stopped = mkdtempSync(join(tmpdir(), `${prefix}12-`));
  const running = mkdtempSync(join(tmpdir(), `${prefix}13-`));
  const other = mkdtempSync(join(tmpdir(), `odooops-test-other-${process.pid}-${RUN}-`));
  try {
    const removed = await removeStaleScratch(prefix, { runId: RUN, isActive: async (id) => id === 13 || id === RUN });
    assert.equal(removed.length, 2);
    assert.ok(!existsSync(mine) && !existsSync(stopped));
    assert.ok(existsSync(running) && existsSync(other));
  } finally {
    for (const d of [mine, stopped, running, other]) rmSync(d, { recursive: true, force: true });
  }
});

test('a failed CREATE DATABASE says CREATEDB only when the role lacks it, and a taken name as such', async () => {
  await c.query('create role odooops_nocreate login');
  await c.query('create role odooops_cancreate login createdb');
  const as = async (user: string) => {
    const r = new pg.Client({ host: srv.host, port: srv.port, user, database: 'postgres' });
    await r.connect();
    return r;
  };
  const attempt = async (r: pg.Client, name: string) => {
    const err = await r.query(`create database "${name}"`).then(() => null, (e) => e);
    assert.ok(err, `create database ${name} failed`);
    return (await createDatabaseError(r, name, err, r.user!)).message;
  };
  const without = await as('odooops_nocreate');
  const withRight = await as('odooops_cancreate');
  try {
    assert.match(await attempt(without, 'sw_denied'), /cannot create the database sw_denied as odooops_nocreate: the role needs CREATEDB/);
    await makeDb('sw_taken', 'prod');
    const taken = await attempt(withRight, 'sw_taken');
    assert.match(taken, /cannot create the database sw_taken: it already exists/);
    assert.doesNotMatch(taken, /CREATEDB/);
  } finally {
    await without.end();
    await withRight.end();
  }
});
