// `odooops dev pull` (what a dev container runs at start), as a real CLI process against a real server:
// the newest masked clone of a real Odoo 17 database is restored into a "local" PostgreSQL (here a second
// database of the Debian cluster, reached through libpq's environment as a developer's own superuser
// role), checksums verified, web.base.url pointed at this machine, and real odoo-bin 17 serves it with the
// clone's admin password; only masked clones are ever served; clear errors for each way it can go wrong.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type * as C from '../contract/index.ts';
import { findPii } from '../server/odoo/verify.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { contentMap, readIndex } from '../server/storage/filestore-objects.ts';
import pg from 'pg';
import { fingerprintDb, fingerprintDir } from './helpers/debian-postgres.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { authenticate, installOdoo, serveOdoo, type OdooInstall } from './helpers/real-odoo.ts';
import { REAL_LOOKING } from './helpers/odoo-sources.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'server', 'cli', 'main.ts');
let p: OdooProject;
let home: string;
let odoo17: OdooInstall;
/** The developer's own role on their local PostgreSQL (Odoo refuses to run as postgres). */
const DEV = { user: 'developer', password: `dev-local-${process.pid}` };

before(async () => {
  [p, odoo17] = await Promise.all([startOdooProject({
    slug: 'pull',
    generate: {},
    real: { pull_prod: { version: '17.0', kind: 'plain' } },
    envs: [
      { name: 'production', stage: 'production', db: 'pull_prod', url: 'https://erp.pull.example' },
      { name: 'staging', stage: 'staging', db: 'pull_staging' },
    ],
  }), installOdoo('17.0')]);
  home = mkdtempSync(join(p.scratch, 'home-'));
  await p.sql('postgres', `create role ${pg.escapeIdentifier(DEV.user)} login superuser password ${pg.escapeLiteral(DEV.password)}`);
});
after(async () => {
  await p?.close();
});

/** The CLI as a developer runs it; resolves with exit code and output (never rejects). */
async function cli(args: string[], env: Record<string, string> = {}, token = p.admin.token) {
  const childEnv = { ...process.env, HOME: home, PGHOST: p.odooPg.host, PGPORT: String(p.odooPg.port), PGUSER: DEV.user, PGPASSWORD: DEV.password, ...env };
  try {
    const r = await run(process.execPath, [CLI, ...args, '--url', env.URL ?? p.cp.server.url, '--token', token], { env: childEnv, timeout: 120_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

const prodPii = async () => ({
  emails: (await p.sql('pull_prod', `select distinct lower(email) as v from res_partner where email is not null and id not in (select partner_id from res_company)`)).map((r) => r.v),
  phones: (await p.sql('pull_prod', `select distinct phone as v from res_partner where phone is not null and id not in (select partner_id from res_company)`)).map((r) => r.v),
  vats: (await p.sql('pull_prod', `select distinct vat as v from res_partner where vat is not null and id not in (select partner_id from res_company)`)).map((r) => r.v),
});

test('no clone yet: a clear error, then --queue-clone makes one and pulls it', async () => {
  const none = await cli(['dev', 'pull', 'pull', '--db', 'devlocal']);
  assert.equal(none.code, 3, none.err);
  assert.match(none.err, /pull has no masked clone of production yet/);
  assert.match(none.err, /odooops run queue pull <staging environment> clone/);

  const t = performance.now();
  const r = await cli(['dev', 'pull', 'pull', '--db', 'devlocal', '--queue-clone', 'staging', '--odoo-version', '17.0']);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  console.log(`# dev pull with a clone of the real Odoo 17 database: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  assert.match(r.out, /no masked clone of production yet: queueing a clone into staging/);
  assert.match(r.out, /\[clone\] .*verified: no sampled email/);
  assert.match(r.out, /checksums match the manifest/);
  assert.match(r.out, /devlocal is a masked copy of production .*; web\.base\.url = http:\/\/localhost:8069/);

  const c = await p.odooPg.client('devlocal');
  try {
    assert.deepEqual(await findPii(c, await prodPii()), [], 'no production email, phone or VAT in the pulled database');
    assert.equal((await c.query(`select value from ir_config_parameter where key = 'web.base.url'`)).rows[0].value, 'http://localhost:8069');
    assert.equal((await c.query(`select value from ir_config_parameter where key = 'database.is_neutralized'`)).rows[0].value, 'true');
    const files = await fingerprintDir(join(home, '.local', 'share', 'Odoo', 'filestore', 'devlocal'));
    const kept = (await c.query(`select store_fname, checksum from ir_attachment where store_fname is not null`)).rows;
    assert.ok(kept.length > 0);
    for (const k of kept) assert.equal(files[k.store_fname], k.checksum, 'Odoo\'s default filestore, file for file');
  } finally {
    await c.end();
  }

  // Real odoo-bin 17 on the pulled database and Odoo's default data directory (where the filestore went),
  // connected as the developer's role: the login page, the clone's admin password; production's do not work.
  const ts = performance.now();
  const odoo = await serveOdoo(odoo17, { host: p.odooPg.host, port: p.odooPg.port, ...DEV }, join(home, '.local', 'share', 'Odoo'), 'devlocal');
  try {
    console.log(`# odoo-bin 17 serving the pulled database: ${((performance.now() - ts) / 1000).toFixed(1)} s`);
    assert.equal((await fetch(`${odoo.url}/web/login`)).status, 200, odoo.output());
    // The clone's fresh password, for members who may operate the cloned environment.
    const { environment_name: cloned } = (await p.cp.pool.query(`select e.name as environment_name from ops.runs r join ops.environments e on e.id = r.environment_id
      where r.kind = 'clone' and r.status = 'succeeded' order by r.id desc limit 1`)).rows[0];
    const login = (await p.admin.call('GET', `/api/projects/pull/environments/${cloned}/clone-login`)).body as { logins: string[]; password: string | null };
    assert.ok(login.password && login.logins.includes('admin'), `the clone has a login for admin: ${JSON.stringify(login)}`);
    const clone = { admin: { login: 'admin', password: login.password } };
    assert.equal(await authenticate(odoo, 'devlocal', clone.admin.login, clone.admin.password), 2, odoo.output());
    assert.equal(await authenticate(odoo, 'devlocal', clone.admin.login, 'admin'), null, 'production\'s admin password does not log in');
    assert.equal(await authenticate(odoo, 'devlocal', REAL_LOOKING.user.login, REAL_LOOKING.user.password), null, 'nor a production user\'s');
    assert.doesNotMatch(odoo.output(), /Traceback|ERROR devlocal/, 'Odoo logged no error');
  } finally {
    await odoo.stop();
  }
});

test('--if-missing keeps the local database; a plain pull replaces it, pointing at the Codespace', async () => {
  await p.sql('devlocal', `insert into ir_config_parameter (key, value) values ('local.work', 'x')`);
  const kept = await cli(['dev', 'pull', 'pull', '--db', 'devlocal', '--if-missing']);
  assert.equal(kept.code, 0, kept.err);
  assert.match(kept.out, /devlocal exists already: keeping it/);
  assert.equal((await p.sql('devlocal', `select count(*)::int as n from ir_config_parameter where key = 'local.work'`))[0].n, 1);

  const fresh = await cli(['dev', 'pull', 'pull', '--db', 'devlocal', '--json'], { CODESPACE_NAME: 'fuzzy-space-guide-7x', GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN: 'app.github.dev' });
  assert.equal(fresh.code, 0, fresh.err);
  const result = JSON.parse(fresh.out);
  assert.equal(result.baseUrl, 'https://fuzzy-space-guide-7x-8069.app.github.dev');
  assert.equal((await p.sql('devlocal', `select count(*)::int as n from ir_config_parameter where key = 'local.work'`))[0].n, 0, 'a fresh copy');
  assert.equal((await p.sql('devlocal', `select value from ir_config_parameter where key = 'web.base.url'`))[0].value, result.baseUrl);
});

test('only masked clones are served; members below developer and strangers are refused', async () => {
  const b = await p.runToEnd('production', 'backup');
  assert.equal(b.status, 'succeeded', b.error ?? '');
  const backupId = (b.result as { backupId: string }).backupId;
  const part = await fetch(`${p.cp.server.url}/api/backups/${backupId}/parts/dump`, { headers: { authorization: `Bearer ${p.admin.token}` } });
  assert.equal(part.status, 403);
  assert.match((await part.json()).error.message, /is not a masked clone: only masked clones are served as parts/);

  const viewer = await p.cp.user();
  assert.equal((await p.admin.call('POST', '/api/projects/pull/members', { userId: viewer.id, role: 'viewer' })).status, 201);
  const refused = await cli(['dev', 'pull', 'pull', '--db', 'viewerdb'], {}, viewer.token);
  assert.equal(refused.code, 3);
  assert.match(refused.err, /your role in pull cannot pull copies of its data; a developer, tester or admin can/);
  const stranger = await cli(['dev', 'pull', 'pull', '--db', 'x'], {}, (await p.cp.user()).token);
  assert.equal(stranger.code, 3);
  assert.match(stranger.err, /project "pull" not found/);
  const badToken = await cli(['dev', 'pull', 'pull', '--db', 'x'], {}, 'not-a-token');
  assert.equal(badToken.code, 3);
  assert.match(badToken.err, /token/i);
  const unreachable = await cli(['dev', 'pull', 'pull', '--db', 'x'], { URL: 'http://127.0.0.1:9' });
  assert.equal(unreachable.code, 4);
  assert.match(unreachable.err, /cannot reach the OdooOps server at http:\/\/127\.0\.0\.1:9/);
});

test('a damaged download or too little disk changes nothing', async () => {
  const before = await fingerprintDb(p.odooPg, 'devlocal');
  // Flip one byte of the stored clone's dump.
  const clone = (await p.admin.call('GET', '/api/projects/pull/environments/production/masked-clone')).body as C.MaskedClone;
  const dump = join(p.cp.server.home, 'backups', clone.manifest.dump.key);
  const bytes = readFileSync(dump);
  const mid = bytes.length >> 1;
  bytes.writeUInt8(bytes[mid]! ^ 0xff, mid);
  writeFileSync(dump, bytes);
  try {
    const r = await cli(['dev', 'pull', 'pull', '--db', 'devlocal']);
    assert.equal(r.code, 5);
    assert.match(r.err, /arrived damaged: its SHA-256 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}; nothing was changed/);
  } finally {
    bytes.writeUInt8(bytes[mid]! ^ 0xff, mid);
    writeFileSync(dump, bytes);
  }
  // Flip one byte of a file of the clone's filestore (a content object): the server stops the tar at that
  // file, and the client would refuse it against the index anyway; nothing changes.
  const store = new LocalBackupStore(join(p.cp.server.home, 'backups'));
  const [file] = await readIndex(store, clone.manifest.filestore as C.ObjectsFilestore);
  const at = (await contentMap(store, clone.manifest.dump.key.split('/')[0]!)).locate(file!.s)!;
  const object = store.localPath(at.key)!;
  const good = readFileSync(object);
  const bad = Buffer.from(good);
  bad[at.offset + file!.n - 1]! ^= 1;
  writeFileSync(object, bad);
  try {
    const r = await cli(['dev', 'pull', 'pull', '--db', 'devlocal']);
    assert.notEqual(r.code, 0, r.out);
    // The first file of the index: the server finds it damaged before it answers, and says so.
    assert.match(r.err, new RegExp(`cannot be pulled: filestore file ${file!.p} is damaged in the backup store: (its object has|its bytes in the pack have) the SHA-1 [0-9a-f]{40}, the index says ${file!.s}`));
  } finally {
    writeFileSync(object, good);
  }
  // A 16 KiB disk for the download.
  const small = mkdtempSync(join(p.scratch, 'small-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', small]);
  try {
    const r = await cli(['dev', 'pull', 'pull', '--db', 'devlocal'], { ODOOOPS_PULL_TMP: small });
    assert.equal(r.code, 3);
    assert.match(r.err, new RegExp(`not enough disk space in ${small}/odooops-pull-\\w+: the pull needs about [\\d.]+ [KM]iB, \\d+ KiB are free`));
  } finally {
    execFileSync('umount', [small]);
  }
  assert.deepEqual(await fingerprintDb(p.odooPg, 'devlocal'), before);
  assert.deepEqual((await p.sql('postgres', `select datname from pg_database where datname like '%odooops%'`)), []);
});
