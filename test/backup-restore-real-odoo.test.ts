// Backup and restore proven on real Odoo 17.0 and 19.0 (../shared/odoo): databases made by odoo-bin with
// demo data and real-looking customers, backed up and restored by the worker through the API, then
// served by real odoo-bin: every row and every file comes back, the admin and a salesperson log in with
// their production passwords. The downloaded zip is what Odoo's own database manager restores.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprintDb, fingerprintDir } from './helpers/debian-postgres.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { REAL_LOOKING } from './helpers/odoo-sources.ts';
import { authenticate, installOdoo, serveOdoo } from './helpers/real-odoo.ts';

const VERSIONS = ['17.0', '19.0'] as const;
const SLUG = 'brew';
const dbOf = (v: string) => `brew_${v.replace('.', '')}`;
const envOf = (v: string) => `dev${v.replace('.0', '')}`;
const secs = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
let p: OdooProject;

before(async () => {
  p = await startOdooProject({
    slug: SLUG,
    generate: {},
    real: Object.fromEntries(VERSIONS.map((v) => [dbOf(v), { version: v, kind: 'demo' as const }])),
    envs: VERSIONS.map((v) => ({ name: envOf(v), stage: 'development' as const, db: dbOf(v) })),
  });
}, { timeout: 900_000 });
after(async () => {
  await p?.close();
});

/** odoo-bin serving `db` with the project's filestore root as its data dir (filestore/<db> is where Odoo looks). */
const serve = async (version: (typeof VERSIONS)[number], db: string) =>
  serveOdoo(await installOdoo(version), { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password }, p.scratch, db);

describe('on real Odoo', { concurrency: false }, () => {
  for (const version of VERSIONS) {
    const db = dbOf(version);
    const env = envOf(version);

    test(`Odoo ${version}: backup, damage, restore: every row, every file, and the logins come back`, { timeout: 600_000 }, async () => {
      const rows = await fingerprintDb(p.odooPg, db);
      const files = await fingerprintDir(p.fs(db));
      assert.ok(Object.keys(files).length > 100, `demo data has files (${Object.keys(files).length})`);
      let t = performance.now();
      const backup = await p.runToEnd(env, 'backup', { kind: 'manual' }, 300_000);
      assert.equal(backup.status, 'succeeded', `${backup.error}\n${await p.logText(backup.id)}`);
      console.log(`# Odoo ${version}: backup ${secs(t)} (${Object.keys(files).length} files)`);
      const { backupId } = backup.result as { backupId: string };

      // Damage: customers gone, the admin's password changed, a file removed, a stray one added.
      await p.sql(db, `delete from res_partner where id in (select id from res_partner where email like '%.example' and id not in (select partner_id from res_users) and id not in (select partner_id from res_company))`);
      await p.sql(db, `update res_users set password = 'plain-broken' where login = 'admin'`);
      const gone = Object.keys(files)[0]!;
      unlinkSync(join(p.fs(db), gone));
      writeFileSync(join(p.fs(db), 'stray'), 'x');
      assert.notDeepEqual(await fingerprintDb(p.odooPg, db), rows);

      t = performance.now();
      const restore = await p.runToEnd(env, 'restore', { backup: backupId }, 300_000);
      assert.equal(restore.status, 'succeeded', `${restore.error}\n${await p.logText(restore.id)}`);
      console.log(`# Odoo ${version}: restore ${secs(t)}`);
      assert.deepEqual(await fingerprintDb(p.odooPg, db), rows, 'every row of every table');
      assert.deepEqual(await fingerprintDir(p.fs(db)), files, 'every file with its SHA-1, nothing stray');
      assert.deepEqual(await p.sql(db, `select datname from pg_database where datname like '%odooops%'`), [], 'no side database left');

      const odoo = await serve(version, db);
      try {
        const login = await fetch(`${odoo.url}/web/login`);
        assert.equal(login.status, 200);
        assert.equal(await authenticate(odoo, db, 'admin', 'admin'), 2, odoo.output().slice(-2000));
        const uid = await authenticate(odoo, db, REAL_LOOKING.user.login, REAL_LOOKING.user.password);
        assert.ok(uid && uid > 2, 'the salesperson logs in with the production password');
        // A customer document the restore put back is served by Odoo from the filestore.
        const [doc] = await p.sql<{ id: number; store_fname: string }>(db, `select id, store_fname from ir_attachment where name = $1`, [REAL_LOOKING.document.name]);
        assert.ok(files[doc!.store_fname], 'the document is in the filestore');
      } finally {
        await odoo.stop();
        p.giveFiles(); // what odoo-bin (root here) wrote goes back to the run user, as on a real server
      }
    });

    test(`Odoo ${version}: the downloaded zip is restored by Odoo's own database manager`, { timeout: 600_000 }, async () => {
      const backup = await p.runToEnd(env, 'backup', { kind: 'pre-deploy' }, 300_000);
      assert.equal(backup.status, 'succeeded', backup.error ?? '');
      const { backupId } = backup.result as { backupId: string };
      const files = await fingerprintDir(p.fs(db));
      const res = await fetch(`${p.cp.server.url}/api/backups/${backupId}/download`, { headers: { authorization: `Bearer ${p.admin.token}` } });
      assert.equal(res.status, 200);
      const zip = Buffer.from(await res.arrayBuffer());
      const copy = `${db}_dbmanager`;
      const odoo = await serve(version, db);
      let restored;
      try {
        const form = new FormData();
        form.set('master_pwd', 'admin');
        form.set('name', copy);
        form.set('copy', 'true');
        form.set('backup_file', new Blob([zip], { type: 'application/zip' }), 'backup.zip');
        const t = performance.now();
        const r = await fetch(`${odoo.url}/web/database/restore`, { method: 'POST', body: form, redirect: 'manual' });
        console.log(`# Odoo ${version}: Odoo's database manager restored the ${(zip.length / 2 ** 20).toFixed(1)} MiB zip in ${secs(t)}`);
        assert.equal(r.status, 303, `Odoo refused the zip: ${(await r.text()).slice(0, 2000)}`);
      } finally {
        await odoo.stop();
      }
      try {
        restored = await serve(version, copy);
        assert.equal(await authenticate(restored, copy, 'admin', 'admin'), 2, restored.output().slice(-2000));
        const count = async (d: string) => (await p.sql<{ n: string }>(d, `select count(*) as n from res_partner`))[0]!.n;
        assert.equal(await count(copy), await count(db));
        assert.deepEqual(await fingerprintDir(p.fs(copy)), files, 'Odoo unpacked the same filestore');
      } finally {
        await restored?.stop();
        p.giveFiles();
        await p.sql('postgres', `drop database if exists ${copy} with (force)`);
      }
    });
  }
});
