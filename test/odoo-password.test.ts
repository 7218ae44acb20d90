// The password a masked clone gives its admin user, proven on real Odoo 17.0 and 19.0: a hash from
// server/odoo/odoo-password.ts, written into res_users.password by SQL, lets /web/session/authenticate
// in with the password and not with another; and a hash Odoo itself wrote verifies with the module.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateOdooPassword, hashOdooPassword, ODOO_PASSWORD_ROUNDS, verifyOdooPassword } from '../server/odoo/odoo-password.ts';
import { createOdooRole, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';
import { authenticate, createOdooDatabase, installOdoo, serveOdoo, type OdooInstall } from './helpers/real-odoo.ts';

const VERSIONS = ['17.0', '19.0'] as const;
const ROLE = { user: 'odoo', password: 'odoo-pw' };
let pgsrv: DebianPostgres;
let scratch: string;
const installs = new Map<string, OdooInstall>();
const seconds = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-odoo-pw-'));
  let t = performance.now();
  pgsrv = await startDebianPostgres();
  await createOdooRole(pgsrv, ROLE.user, ROLE.password);
  // apt and dpkg allow one install at a time: the versions install one after the other.
  for (const v of VERSIONS) {
    t = performance.now();
    installs.set(v, await installOdoo(v));
    console.log(`# Odoo ${v}: install.sh ${seconds(t)}`);
  }
}, { timeout: 900_000 });

after(async () => {
  await pgsrv?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the hash format: passlib pbkdf2_sha512 with ab64 salt and checksum', async () => {
  const pw = generateOdooPassword();
  assert.match(pw, /^[A-Za-z0-9_-]{20}$/);
  assert.notEqual(generateOdooPassword(), pw);
  const hash = await hashOdooPassword(pw);
  // 16-byte salt → 22 ab64 characters, 64-byte key → 86; "." where base64 has "+", no padding.
  assert.match(hash, new RegExp(`^\\$pbkdf2-sha512\\$${ODOO_PASSWORD_ROUNDS}\\$[A-Za-z0-9./]{22}\\$[A-Za-z0-9./]{86}$`));
  assert.notEqual(await hashOdooPassword(pw), hash, 'a fresh salt each time');
  assert.ok(await verifyOdooPassword(pw, hash));
  assert.ok(!(await verifyOdooPassword(`${pw}!`, hash)));
  assert.ok(!(await verifyOdooPassword(pw, 'plain-text')));
});

describe('on real Odoo', { concurrency: true }, () => {
  for (const version of VERSIONS) {
    test(`Odoo ${version}: a clone's admin password logs in, a wrong one does not`, { timeout: 600_000 }, async () => {
      const odoo = installs.get(version)!;
      const db = `pw_${version.replace('.', '_')}`;
      const data = join(scratch, db);
      const server = { host: pgsrv.host, port: pgsrv.port, ...ROLE };
      let t = performance.now();
      await createOdooDatabase(odoo, server, data, db);
      console.log(`# Odoo ${version}: -i base ${seconds(t)}`);

      const c = await pgsrv.client(db);
      let running;
      try {
        // Odoo's own hash of its default admin password verifies with our module: the same format both ways.
        const own = (await c.query(`select password from res_users where login = 'admin'`)).rows[0].password as string;
        assert.match(own, /^\$pbkdf2-sha512\$600000\$/, `Odoo ${version} hashes with 600,000 rounds`);
        assert.ok(await verifyOdooPassword('admin', own));
        assert.ok(!(await verifyOdooPassword('Admin', own)));

        const password = generateOdooPassword();
        const hash = await hashOdooPassword(password);
        assert.equal((await c.query(`update res_users set password = $1 where login = 'admin'`, [hash])).rowCount, 1);
        t = performance.now();
        running = await serveOdoo(odoo, server, data, db);
        console.log(`# Odoo ${version}: serving after ${seconds(t)}`);
        assert.equal(await authenticate(running, db, 'admin', password), 2, running.output().slice(-2000));
        assert.equal(await authenticate(running, db, 'admin', `${password}x`), null);
        assert.equal(await authenticate(running, db, 'admin', 'admin'), null, 'the old password no longer works');
        // Odoo keeps the hash (same rounds: nothing to upgrade on login).
        assert.equal((await c.query(`select password from res_users where login = 'admin'`)).rows[0].password, hash);
      } finally {
        await running?.stop();
        await c.end();
      }
    });
  }
});
