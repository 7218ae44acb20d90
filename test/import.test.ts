// Importing an existing Odoo database into an environment (issue 14), on real Odoo 17 and 19: a zip made
// by Odoo's own database manager (/web/database/backup) and a pg_dump -Fc with a filestore tarball, sent
// through the real CLI and API, restored by the real worker; then identical tables and files, odoo-bin
// boots the imported database and people log in. Production needs a second admin's approval bound to the
// upload. And the upload as an attacker would make it: unsafe zip entries, psql meta-commands and
// dangerous statements in the SQL, zip bombs, corrupt files, an upload cut halfway, a too-large one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { basename, dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import pg from 'pg';
import type * as C from '../contract/index.ts';
import { fingerprintDb, fingerprintDir } from './helpers/debian-postgres.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { REAL_LOOKING } from './helpers/odoo-sources.ts';
import { runScript, UnsafeSql } from '../server/odoo/sql-script.ts';
import { authenticate, installOdoo, serveOdoo, type OdooInstall } from './helpers/real-odoo.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const MAX_UPLOAD = 48 * 1024 * 1024;

let p: OdooProject;
const odoo: Record<string, OdooInstall> = {};
const SOURCES = { '17.0': 'src17', '19.0': 'src19' } as const;

/** The real CLI, as a user runs it. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['server/cli/main.ts', ...args, '--url', p.cp.server.url, '--token', p.admin.token],
      { cwd: ROOT, timeout: 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** A raw upload through the API (the body as given). */
async function upload(env: string, body: Buffer, token = p.admin.token): Promise<{ status: number; body: any }> {
  const res = await fetch(`${p.cp.server.url}/api/projects/${p.slug}/environments/${env}/imports`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: new Uint8Array(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const storeDir = () => join(p.cp.home, 'backups');
/** Every file under the backup store's imports/ (uploads waiting, or leftovers). */
function importFiles(): string[] {
  const dir = join(storeDir(), 'imports');
  return existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)) : [];
}

async function importRuns(): Promise<number> {
  const { rows } = await p.cp.pool.query(`select count(*)::int as n from ops.runs where kind = 'import'`);
  return rows[0].n;
}

/** Odoo's own database manager backup (zip with dump.sql, filestore/, manifest.json). */
async function odooZip(version: '17.0' | '19.0', db: string, out: string): Promise<void> {
  const srv = { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password };
  const o = await serveOdoo(odoo[version]!, srv, p.scratch, db);
  try {
    const res = await fetch(`${o.url}/web/database/backup`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ master_pwd: 'admin', name: db, backup_format: 'zip' }),
    });
    assert.equal(res.status, 200, `Odoo's backup answered ${res.status}: ${o.output().slice(-2000)}`);
    const zip = Buffer.from(await res.arrayBuffer());
    assert.equal(zip.readUInt32LE(0), 0x04034b50, `Odoo answered a zip (${res.headers.get('content-type')})`);
    writeFileSync(out, zip);
  } finally {
    await o.stop();
  }
}

/** Every attachment of an imported database has its file, with the SHA-1 Odoo recorded. */
async function attachmentsIntact(db: string): Promise<number> {
  const rows = await p.sql<{ store_fname: string; checksum: string }>(db, `select store_fname, checksum from ir_attachment where store_fname is not null`);
  assert.ok(rows.length > 0, `${db} has attachments in its filestore`);
  for (const r of rows) {
    const file = join(p.fs(db), r.store_fname);
    assert.ok(existsSync(file), `${r.store_fname} exists in ${db}'s filestore`);
    assert.equal(createHash('sha1').update(readFileSync(file)).digest('hex'), r.checksum, `${r.store_fname} has its SHA-1`);
  }
  return rows.length;
}

/** odoo-bin boots the imported database; admin and the salesperson log in. */
async function bootsAndLogsIn(version: '17.0' | '19.0', db: string): Promise<void> {
  const srv = { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password };
  const o = await serveOdoo(odoo[version]!, srv, p.scratch, db);
  try {
    assert.equal((await fetch(`${o.url}/web/login`)).status, 200);
    assert.equal(await authenticate(o, db, 'admin', 'admin'), 2, 'admin logs in on the imported database');
    assert.ok(await authenticate(o, db, REAL_LOOKING.user.login, REAL_LOOKING.user.password), 'the salesperson logs in with their own password');
    assert.equal(await authenticate(o, db, 'admin', 'not-the-password'), null);
  } finally {
    await o.stop();
  }
}

before(async () => {
  const [o17, o19] = await Promise.all([installOdoo('17.0'), installOdoo('19.0')]);
  odoo['17.0'] = o17;
  odoo['19.0'] = o19;
  p = await startOdooProject({
    slug: 'imp',
    envs: [
      { name: 'zip17', stage: 'staging', db: 'imp_zip17' }, { name: 'zip19', stage: 'staging', db: 'imp_zip19' },
      { name: 'pgc17', stage: 'staging', db: 'imp_pgc17' }, { name: 'pgc19', stage: 'staging', db: 'imp_pgc19' },
      { name: 'production', stage: 'production', db: 'imp_prod' }, { name: 'target', stage: 'staging', db: 'imp_target' },
    ],
    generate: {},
    real: { src17: { version: '17.0', kind: 'demo' }, src19: { version: '19.0', kind: 'demo' } },
    server: { maxImportBytes: MAX_UPLOAD },
  });
});
after(async () => {
  await p?.close();
});

for (const version of ['17.0', '19.0'] as const) {
  describe(`Odoo ${version}`, () => {
    const src = SOURCES[version];
    const v = version.slice(0, 2);

    test(`an Odoo ${version} zip from Odoo's own database manager imports through the CLI: same tables, same files, boots, logs in`, async () => {
      const zip = join(p.scratch, `${src}.zip`);
      await odooZip(version, src, zip);
      const before = await fingerprintDb(p.odooPg, src);
      const t = performance.now();
      const r = await cli(['env', 'import', p.slug, `zip${v}`, zip, '--follow']);
      const seconds = (performance.now() - t) / 1000;
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`Odoo ${version.replace('.', '\\.')}`), 'the CLI shows the uploaded Odoo version');
      assert.match(r.stdout, /imported into zip\d+/);
      console.log(`# import of an Odoo ${version} zip (${(readFileSync(zip).length / 1048576).toFixed(1)} MiB) through the CLI: ${seconds.toFixed(1)} s`);

      assert.deepEqual(await fingerprintDb(p.odooPg, `imp_zip${v}`), before, 'every table has the same rows');
      assert.deepEqual(await fingerprintDir(p.fs(`imp_zip${v}`)), await fingerprintDir(p.fs(src)), 'every filestore file has the same SHA-1');
      const files = await attachmentsIntact(`imp_zip${v}`);
      console.log(`# Odoo ${version} zip import: ${Object.keys(before).length} tables identical, ${files} attachments with their SHA-1`);

      // Kept as a backup of kind import, and the run shows in the runs and the audit log.
      const backups = (await p.admin.call('GET', `/api/projects/${p.slug}/environments/zip${v}/backups`)).body as C.Backup[];
      assert.equal(backups[0]?.kind, 'import');
      assert.equal(backups[0]?.odooVersion?.slice(0, 4), version);
      const runs = (await p.admin.call('GET', `/api/runs?project=${p.slug}&environment=zip${v}`)).body as C.Run[];
      assert.equal(runs[0]?.kind, 'import');
      assert.equal(runs[0]?.status, 'succeeded');
      const audit = (await p.admin.call('GET', `/api/projects/${p.slug}/audit?limit=200`)).body as C.AuditEntry[];
      assert.ok(audit.some((a) => a.action === 'import.upload' && (a.details as { environment?: string }).environment === `zip${v}`), 'the upload is audited');
      assert.deepEqual(importFiles(), [], 'the upload is gone from the store once imported (the backup keeps it)');

      await bootsAndLogsIn(version, `imp_zip${v}`);
    });

    test(`an Odoo ${version} pg_dump -Fc with a filestore tarball imports: same tables, same files, boots, logs in`, async () => {
      const dump = join(p.scratch, `${src}.pgc`);
      const tarball = join(p.scratch, `${src}-filestore.tar.gz`);
      await run('pg_dump', ['--format=custom', '--no-owner', '-h', p.odooPg.host, '-p', String(p.odooPg.port), '-U', ODOO_ROLE, '-f', dump, src],
        { env: { ...process.env, PGPASSWORD: p.password } });
      // As people make one: the database's directory itself in the archive.
      await run('tar', ['--create', '--gzip', '--file', tarball, '--directory', join(p.scratch, 'filestore'), src]);
      const before = await fingerprintDb(p.odooPg, src);
      const t = performance.now();
      const r = await cli(['env', 'import', p.slug, `pgc${v}`, dump, '--filestore', tarball, '--follow']);
      const seconds = (performance.now() - t) / 1000;
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      console.log(`# import of an Odoo ${version} pg_dump -Fc + filestore tarball through the CLI: ${seconds.toFixed(1)} s`);
      assert.deepEqual(await fingerprintDb(p.odooPg, `imp_pgc${v}`), before);
      assert.deepEqual(await fingerprintDir(p.fs(`imp_pgc${v}`)), await fingerprintDir(p.fs(src)));
      await attachmentsIntact(`imp_pgc${v}`);
      await bootsAndLogsIn(version, `imp_pgc${v}`);
    });
  });
}

describe('checks before anything is touched', () => {
  test('an upload of another major version than the environment runs is refused, and nothing changes', async () => {
    // zip17 now runs 17.0 (its import is its latest backup): a 19.0 database is refused.
    const zip = join(p.scratch, 'src19.zip');
    assert.ok(existsSync(zip), 'the 19.0 zip of the test above');
    const before = await fingerprintDb(p.odooPg, 'imp_zip17');
    const r = await upload('zip17', readFileSync(zip));
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'version_mismatch');
    assert.match(r.body.error.message, /Odoo 19\.0.*runs Odoo 17\.0/);
    assert.deepEqual(await fingerprintDb(p.odooPg, 'imp_zip17'), before);
    assert.deepEqual(importFiles(), [], 'the refused upload is removed');
  });

  test('the worker checks the version too (an environment whose database is 17.0 but has no backup yet)', async () => {
    // target gets a 17.0 database by hand (no backup of it exists): only the worker can know its version.
    await p.sql('postgres', `create database imp_target owner ${ODOO_ROLE}`);
    await run('pg_restore', ['--no-owner', '--exit-on-error', '-h', p.odooPg.host, '-p', String(p.odooPg.port), '-U', ODOO_ROLE, '-d', 'imp_target', join(p.scratch, 'src17.pgc')],
      { env: { ...process.env, PGPASSWORD: p.password } });
    const before = await fingerprintDb(p.odooPg, 'imp_target');
    assert.ok(Object.keys(before).includes('ir_module_module'));
    const r = await upload('target', readFileSync(join(p.scratch, 'src19.zip')));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const done = await p.finished(r.body.run.id, 300_000);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /the upload is Odoo 19\.0 but target runs Odoo 17\.0/);
    assert.deepEqual(await fingerprintDb(p.odooPg, 'imp_target'), before, 'the environment is untouched');
    const side = await p.sql('postgres', `select datname from pg_database where datname like 'imp_target_odooops_%'`);
    assert.deepEqual(side, [], 'no side database is left');
  });
});

describe('an interrupted import', () => {
  test('the next attempt of the run removes the side database an earlier attempt left, and imports', async () => {
    // What a worker killed mid-load leaves: <db>_odooops_src_<run>, half filled. Made here for the run the
    // upload is about to queue (the next id of ops.runs).
    const seq = (await p.cp.pool.query(`select pg_get_serial_sequence('ops.runs', 'id') as s`)).rows[0].s as string;
    const { rows: [last] } = await p.cp.pool.query(`select last_value, is_called from ${seq}`);
    const next = Number(last.last_value) + (last.is_called ? 1 : 0);
    const left = `imp_target_odooops_src_${next}`;
    await p.sql('postgres', `create database ${left} owner ${ODOO_ROLE}`);
    await p.sql(left, 'create table half_loaded (a int)');
    const r = await upload('target', readFileSync(join(p.scratch, 'src17.zip')));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.run.id, next, 'the run the leftover was made for');
    const done = await p.finished(r.body.run.id, 300_000);
    const log = await p.logText(done.id);
    assert.equal(done.status, 'succeeded', `${done.error}\n${log.slice(-3000)}`);
    assert.match(log, new RegExp(`removed what an interrupted earlier run left: ${left}`));
    assert.deepEqual(await p.sql('postgres', `select datname from pg_database where datname like 'imp_target_odooops_%'`), [], 'no side database is left');
    assert.deepEqual(await p.sql('imp_target', `select to_regclass('public.half_loaded') as t`), [{ t: null }], 'the leftover did not become the environment');
  });
});

describe('production', () => {
  test('an import into production needs a second admin\'s approval, bound to the uploaded file', async () => {
    const second = await p.cp.user();
    assert.equal((await p.admin.call('POST', `/api/projects/${p.slug}/members`, { userId: second.id, role: 'admin' })).status, 201);
    const zip = readFileSync(join(p.scratch, 'src17.zip'));
    const up = await upload('production', zip);
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.equal(up.body.approvalNeeded, true);
    assert.equal(up.body.run, null, 'nothing is queued without an approval');
    const params = up.body.params as C.ImportParams;

    const without = await p.queue('production', 'import', params);
    assert.equal(without.status, 403, JSON.stringify(without.body));
    assert.match(without.body.error.message, /needs an approval/);

    // An approval for this upload cannot carry another file: a second upload has another id and checksum.
    const other = await upload('production', zip);
    assert.equal(other.status, 201);
    const asked = await p.admin.call('POST', `/api/projects/${p.slug}/environments/production/approvals`, { kind: 'import', params, reason: 'leaving Odoo.sh' });
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    assert.equal((await p.admin.call('POST', `/api/approvals/${asked.body.id}/approve`)).status, 403, 'the requester cannot approve');
    assert.equal((await second.call('POST', `/api/approvals/${asked.body.id}/approve`)).status, 200);
    const swapped = await p.queue('production', 'import', other.body.params, asked.body.id);
    assert.equal(swapped.status, 403, JSON.stringify(swapped.body));
    assert.match(swapped.body.error.message, /another upload/);

    const t = performance.now();
    const q = await p.queue('production', 'import', params, asked.body.id);
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const done = await p.finished(q.body.id, 300_000);
    assert.equal(done.status, 'succeeded', await p.logText(q.body.id));
    console.log(`# production import of the Odoo 17.0 zip after approval: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    assert.deepEqual(await fingerprintDb(p.odooPg, 'imp_prod'), await fingerprintDb(p.odooPg, 'src17'));
    const again = await p.queue('production', 'import', params, asked.body.id);
    assert.equal(again.status, 403, 'an approval is used once');
  });

  test('a file changed in the store after its approval is refused by the worker, and production stays as it was', async () => {
    const second = (await p.admin.call('GET', `/api/projects/${p.slug}/members`)).body.find((m: C.Member) => m.userId !== p.admin.id && m.role === 'admin');
    assert.ok(second, 'the second admin of the test above');
    const up = await upload('production', readFileSync(join(p.scratch, 'src17.zip')));
    assert.equal(up.status, 201);
    const asked = await p.admin.call('POST', `/api/projects/${p.slug}/environments/production/approvals`, { kind: 'import', params: up.body.params });
    // The second admin decides through the database as the API would (their token is not kept here).
    await p.cp.pool.query(`update ops.approvals set status = 'approved', decided_by = $2, decided_at = now() where id = $1`, [asked.body.id, second.userId]);
    // Someone with access to the store swaps the approved file for another (a valid Odoo zip too).
    const stored = importFiles().find((f) => f.includes(up.body.upload) && f.endsWith('/upload'));
    assert.ok(stored);
    writeFileSync(stored, readFileSync(join(p.scratch, 'src19.zip')));
    const before = await fingerprintDb(p.odooPg, 'imp_prod');
    const q = await p.queue('production', 'import', up.body.params, asked.body.id);
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const done = await p.finished(q.body.id, 120_000);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /it changed since; nothing was imported/);
    assert.deepEqual(await fingerprintDb(p.odooPg, 'imp_prod'), before);
  });
});

describe('the role the uploaded SQL runs as', () => {
  test('an environment whose database role is a superuser refuses imports before loading anything', async () => {
    const role = 'odoo_super';
    const password = `Su-${process.pid}-pw-long-enough`;
    const su = await p.odooPg.client();
    try {
      await su.query(`create role ${role} login superuser password '${password}'`);
    } finally {
      await su.end();
    }
    const variable = `ODOOOPS_TEST_IMPORT_SU_${process.pid}`;
    process.env[variable] = password;
    await p.addInfra({ databaseServers: { 'su-pg': { host: p.odooPg.host, port: p.odooPg.port, user: role, password: `env:${variable}`, projects: [p.slug] } } });
    await p.addEnv({ name: 'superuser', stage: 'staging', db: 'imp_su' }, { server: 'su-pg' });
    const r = await upload('superuser', readFileSync(join(p.scratch, 'src17.zip')));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const done = await p.finished(r.body.run.id, 120_000);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /refuse to run an uploaded dump as odoo_super: it is a superuser/);
    assert.deepEqual(await p.sql('postgres', `select datname from pg_database where datname like 'imp_su%'`), [], 'no database was made');
  });
});

describe('the statement checker where the worker runs it (on a live connection)', () => {
  test('statements before a dangerous one run, the dangerous one and everything after never reach the server', async () => {
    const marker = '/tmp/odooops-import-worker-pwned';
    rmSync(marker, { force: true });
    await p.sql('postgres', `create database imp_checker owner ${ODOO_ROLE}`);
    const db = new pg.Client({ host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password, database: 'imp_checker' });
    await db.connect();
    try {
      for (const evil of [`\\! touch ${marker}`, `COPY public.t (a) FROM PROGRAM 'touch ${marker}';`, `ALTER ROLE ${ODOO_ROLE} PASSWORD 'taken';`, `CREATE TABLE public.u AS SELECT 1; \\! touch ${marker}`]) {
        await db.query('drop table if exists public.t, public.after');
        const sql = `SET statement_timeout = 0;\nCREATE TABLE public.t (a int);\n${evil}\nCREATE TABLE public.after (a int);\n-- PostgreSQL database dump complete\n`;
        await assert.rejects(runScript(Readable.from([sql]), { client: db }), UnsafeSql, evil);
        const tables = (await db.query(`select tablename from pg_tables where schemaname = 'public' order by 1`)).rows.map((r) => r.tablename);
        assert.ok(tables.includes('t'), 'what came before ran');
        assert.ok(!tables.includes('after'), `nothing after ${evil} ran`);
        assert.equal(existsSync(marker), false);
      }
      // The role's password is still the operator's: a new connection with it works.
      const again = new pg.Client({ host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password, database: 'imp_checker' });
      await again.connect();
      await again.end();
    } finally {
      await db.end();
    }
  });
});

describe('the upload as an attacker makes it', () => {
  /** A zip made by Python's zipfile: entries as given (names and modes yazl would refuse to write). */
  async function zipOf(entries: { name: string; data: string; mode?: number; stored?: boolean }[], out: string): Promise<Buffer> {
    const script = `
import json, sys, zipfile
entries = json.load(open(sys.argv[2]))
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    for e in entries:
        info = zipfile.ZipInfo(e['name'])
        info.compress_type = zipfile.ZIP_STORED if e.get('stored') else zipfile.ZIP_DEFLATED
        if e.get('mode'): info.external_attr = e['mode'] << 16
        z.writestr(info, e['data'])
`;
    writeFileSync(`${out}.json`, JSON.stringify(entries));
    await run('python3', ['-c', script, out, `${out}.json`]);
    return readFileSync(out);
  }
  const marker = '/tmp/odooops-import-pwned';
  const realSql = () => {
    // The real dump.sql of Odoo's zip, to hide things in.
    const sql = join(p.scratch, 'dump17.sql');
    return sql;
  };

  before(async () => {
    await run('unzip', ['-o', '-q', join(p.scratch, 'src17.zip'), 'dump.sql', '-d', p.scratch]);
    await run('mv', [join(p.scratch, 'dump.sql'), realSql()]);
  });

  const withSql = (inject: string) => {
    // Injected after the first table's creation: a checker reading only the head would miss it.
    const sql = readFileSync(realSql(), 'utf8');
    const at = sql.indexOf(';\n', sql.indexOf('CREATE TABLE')) + 2;
    return sql.slice(0, at) + inject + '\n' + sql.slice(at);
  };

  const cases: { name: string; entries: () => { name: string; data: string; mode?: number; stored?: boolean }[]; expect: RegExp }[] = [
    { name: 'a ../ path', entries: () => [{ name: 'dump.sql', data: withSql('') }, { name: 'filestore/../../evil', data: 'x' }], expect: /not a plain path|unsafe entry|invalid relative path/ },
    { name: 'an absolute path', entries: () => [{ name: 'dump.sql', data: withSql('') }, { name: '/etc/evil', data: 'x' }], expect: /absolute|unsafe entry|outside/ },
    { name: 'a symlink in the filestore', entries: () => [{ name: 'dump.sql', data: withSql('') }, { name: 'filestore/ab/link', data: '/etc/shadow', mode: 0o120777 }], expect: /symbolic link/ },
    { name: 'a file outside filestore/', entries: () => [{ name: 'dump.sql', data: withSql('') }, { name: 'addons/evil.py', data: 'import os' }], expect: /outside dump\.sql, manifest\.json and filestore/ },
    { name: 'a psql shell meta-command', entries: () => [{ name: 'dump.sql', data: withSql(`\\! touch ${marker}`) }], expect: /psql meta-command/ },
    { name: 'a meta-command after a statement on one line', entries: () => [{ name: 'dump.sql', data: withSql(`SELECT 1; \\! touch ${marker}`) }], expect: /statement OdooOps does not run|psql meta-command/ },
    { name: 'COPY FROM PROGRAM', entries: () => [{ name: 'dump.sql', data: withSql(`COPY public.res_partner (name) FROM PROGRAM 'touch ${marker}';`) }], expect: /not COPY \.\.\. FROM stdin/ },
    { name: 'ALTER ROLE', entries: () => [{ name: 'dump.sql', data: withSql(`ALTER ROLE ${ODOO_ROLE} SUPERUSER;`) }], expect: /does not run/ },
    { name: 'CREATE EXTENSION', entries: () => [{ name: 'dump.sql', data: withSql('CREATE EXTENSION IF NOT EXISTS plpython3u;') }], expect: /creates an extension/ },
    { name: 'a DO block', entries: () => [{ name: 'dump.sql', data: withSql(`DO $$ BEGIN PERFORM pg_sleep(1); END $$;`) }], expect: /does not run/ },
    { name: 'SET ROLE', entries: () => [{ name: 'dump.sql', data: withSql('SET ROLE postgres;') }], expect: /does not run/ },
    { name: 'a function in an untrusted language', entries: () => [{ name: 'dump.sql', data: withSql(`CREATE FUNCTION public.x() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$;`) }], expect: /language plpython3u/ },
    { name: 'no dump.sql', entries: () => [{ name: 'manifest.json', data: '{}' }], expect: /no dump\.sql/ },
    { name: 'a database that is not Odoo', entries: () => [{ name: 'dump.sql', data: 'CREATE TABLE public.t (a int);\nCOPY public.t (a) FROM stdin;\n1\n\\.\n-- PostgreSQL database dump complete\n' }], expect: /not an Odoo database/ },
    { name: 'a dump cut short', entries: () => [{ name: 'dump.sql', data: withSql('').slice(0, 200_000) }], expect: /cut short or corrupt/ },
    { name: 'a dump cut at a statement\'s end', entries: () => { const sql = withSql(''); return [{ name: 'dump.sql', data: sql.slice(0, sql.lastIndexOf(';\n', sql.length - 2000) + 2) }]; }, expect: /cut short or corrupt/ },
  ];
  for (const c of cases) {
    test(`a zip with ${c.name} is refused before anything is stored or queued`, async () => {
      rmSync(marker, { force: true });
      const runs = await importRuns();
      const files = importFiles();
      const r = await upload('target', await zipOf(c.entries(), join(p.scratch, 'evil.zip')));
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.match(r.body.error.message, c.expect);
      assert.deepEqual(importFiles(), files, 'nothing is left in the store');
      assert.equal(await importRuns(), runs, 'nothing is queued');
      assert.equal(existsSync(marker), false, 'nothing ran');
    });
  }

  // A pg_dump -Fc with a filestore tarball is a tar bundle (what odooops env import --filestore sends):
  // its filestore tarball is checked as the zip is, before anything is stored or queued.
  for (const [name, entry, expect] of [
    ['a symbolic link', "t = tarfile.TarInfo('ab/link'); t.type = tarfile.SYMTYPE; t.linkname = '/etc/shadow'; f.addfile(t)", /is a symlink, not a regular file/],
    ['a hard link', "t = tarfile.TarInfo('ab/hard'); t.type = tarfile.LNKTYPE; t.linkname = '/etc/shadow'; f.addfile(t)", /is a link, not a regular file/],
    ['a ../ path', "t = tarfile.TarInfo('ab/../../../evil'); t.size = 1; f.addfile(t, io.BytesIO(b'x'))", /not a plain relative path/],
    ['an absolute path', "t = tarfile.TarInfo('/etc/evil'); t.size = 1; f.addfile(t, io.BytesIO(b'x'))", /not a plain relative path/],
  ] as const) {
    test(`a pg_dump bundle whose filestore tarball holds ${name} is refused before anything is stored or queued`, async () => {
      const dump = join(p.scratch, 'evil-src.pgc');
      if (!existsSync(dump)) {
        await run('pg_dump', ['--format=custom', '--no-owner', '-h', p.odooPg.host, '-p', String(p.odooPg.port), '-U', ODOO_ROLE, '-f', dump, 'src17'],
          { env: { ...process.env, PGPASSWORD: p.password } });
      }
      const out = join(p.scratch, 'evil-bundle.tar');
      await run('python3', ['-c', `
import io, sys, tarfile
fs = io.BytesIO()
with tarfile.open(fileobj=fs, mode='w') as f:
    ${entry}
with tarfile.open(sys.argv[1], 'w') as b:
    b.add(sys.argv[2], arcname='dump.pgc')
    t = tarfile.TarInfo('filestore.tar'); t.size = len(fs.getvalue()); b.addfile(t, io.BytesIO(fs.getvalue()))
`, out, dump]);
      const runs = await importRuns();
      const files = importFiles();
      const r = await upload('target', readFileSync(out));
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.match(r.body.error.message, expect);
      assert.deepEqual(importFiles(), files, 'nothing is left in the store');
      assert.equal(await importRuns(), runs, 'nothing is queued');
    });
  }

  test('a zip bomb stops at the operator\'s expansion limit', async () => {
    // 48 MiB × 20 is the limit; 1.2 GB of zeros deflate to about a megabyte.
    const out = join(p.scratch, 'bomb.zip');
    await run('python3', ['-c', `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('dump.sql', open(sys.argv[2]).read())
    zero = b'0' * 2000000
    for i in range(600):
        z.writestr('filestore/aa/%040x' % i, zero)
`, out, realSql()]);
    const files = importFiles();
    const r = await upload('target', readFileSync(out));
    assert.equal(r.status, 422, JSON.stringify(r.body).slice(0, 500));
    assert.match(r.body.error.message, /expands to .* more than the operator's limit/);
    assert.deepEqual(importFiles(), files);
  });

  test('a corrupt zip and a corrupt pg_dump are refused', async () => {
    const files = importFiles();
    const zip = readFileSync(join(p.scratch, 'src17.zip'));
    const cut = await upload('target', zip.subarray(0, Math.floor(zip.length / 2)));
    assert.equal(cut.status, 422);
    assert.match(cut.body.error.message, /zip is corrupt or cut short/);
    const flipped = Buffer.from(zip);
    for (let i = 2000; i < 2400; i++) flipped[i] = flipped[i]! ^ 0xff;
    const bad = await upload('target', flipped);
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.match(bad.body.error.message, /corrupt/);
    const pgc = readFileSync(join(p.scratch, 'src17.pgc'));
    const half = await upload('target', pgc.subarray(0, Math.floor(pgc.length / 2)));
    assert.equal(half.status, 422, JSON.stringify(half.body));
    assert.match(half.body.error.message, /pg_dump file is corrupt|cut short/);
    const junk = await upload('target', Buffer.from('hello, this is not a database'));
    assert.equal(junk.status, 422);
    assert.match(junk.body.error.message, /not an Odoo backup zip, a pg_dump -Fc file/);
    assert.deepEqual(importFiles(), files);
  });

  test('an upload over the operator\'s limit is refused with 413 before its body is read, and as it streams', async () => {
    const files = importFiles();
    // Declared too large: answered at once, no byte sent.
    const early = await new Promise<{ status: number; body: string }>((done, fail) => {
      const req = request(`${p.cp.server.url}/api/projects/${p.slug}/environments/target/imports`, {
        method: 'POST', headers: { authorization: `Bearer ${p.admin.token}`, 'content-length': String(MAX_UPLOAD + 1) },
      }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => done({ status: res.statusCode!, body }));
      });
      req.on('error', fail);
      req.flushHeaders();
    });
    assert.equal(early.status, 413);
    assert.match(JSON.parse(early.body).error.message, /imports are limited to/);
    assert.match(JSON.parse(early.body).error.hint, /--max-import-size/);
    // Chunked (no length): cut off as soon as it passes the limit.
    const big = Buffer.alloc(MAX_UPLOAD + 1024 * 1024, 1);
    const res = await fetch(`${p.cp.server.url}/api/projects/${p.slug}/environments/target/imports`, {
      method: 'POST', headers: { authorization: `Bearer ${p.admin.token}` },
      body: new ReadableStream({ start(c) { for (let i = 0; i < big.length; i += 1 << 20) c.enqueue(big.subarray(i, i + (1 << 20))); c.close(); } }),
      duplex: 'half',
    } as RequestInit).catch((err: Error) => err);
    if (!(res instanceof Error)) assert.equal(res.status, 413);
    assert.deepEqual(importFiles(), files, 'nothing is left in the store');
  });

  test('an upload cut halfway changes nothing and leaves no file', async () => {
    const zip = readFileSync(join(p.scratch, 'src17.zip'));
    const before = await fingerprintDb(p.odooPg, 'imp_zip17');
    const runs = await importRuns();
    const files = importFiles();
    await new Promise<void>((done) => {
      const req = request(`${p.cp.server.url}/api/projects/${p.slug}/environments/zip17/imports`, {
        method: 'POST', headers: { authorization: `Bearer ${p.admin.token}`, 'content-length': String(zip.length) },
      });
      req.on('error', () => done());
      req.on('response', () => done());
      req.write(zip.subarray(0, Math.floor(zip.length / 2)), () => setTimeout(() => req.destroy(), 300));
    });
    // The server notices the broken connection and removes what it wrote.
    const deadline = Date.now() + 10_000;
    while (importFiles().length !== files.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(importFiles(), files, 'no half file in the store');
    const partials = readdirSync(storeDir(), { recursive: true }).filter((f) => String(f).endsWith('.partial'));
    assert.deepEqual(partials, []);
    assert.equal(await importRuns(), runs, 'nothing is queued');
    assert.deepEqual(await fingerprintDb(p.odooPg, 'imp_zip17'), before, 'the environment is untouched');
  });

  test('uploads never imported (no approval came) are removed after 48 hours, at the next upload', async () => {
    const zip = readFileSync(join(p.scratch, 'src17.zip'));
    const fresh = await upload('production', zip);
    assert.equal(fresh.status, 201);
    const envDir = dirname(dirname(importFiles().find((f) => f.includes(fresh.body.upload))!));
    const metas = () => importFiles().filter((f) => f.startsWith(`${envDir}/`) && f.endsWith('/upload.json'));
    const waiting = metas().filter((f) => !f.includes(fresh.body.upload));
    assert.ok(waiting.length > 0, 'production has older uploads waiting for an approval (the tests above)');
    const old = new Date(Date.now() - 49 * 3600_000);
    for (const f of waiting) utimesSync(f, old, old);
    const next = await upload('production', zip);
    assert.equal(next.status, 201);
    assert.deepEqual(metas().map((f) => basename(dirname(f))).sort(), [fresh.body.upload, next.body.upload].sort(), 'only the uploads of the last 48 hours are left');
  });

  test('a viewer cannot import, and nothing of their body is stored', async () => {
    const viewer = await p.cp.user();
    assert.equal((await p.admin.call('POST', `/api/projects/${p.slug}/members`, { userId: viewer.id, role: 'viewer' })).status, 201);
    const files = importFiles();
    const r = await upload('target', readFileSync(join(p.scratch, 'src17.zip')), viewer.token);
    assert.equal(r.status, 403);
    assert.deepEqual(importFiles(), files);
  });
});
