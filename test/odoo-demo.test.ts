// Which odoo-bin is told --with-demo so that a new database gets demo data (server/deploy/odoo-demo.ts).
// Real odoo-bin 17.0 and 19.0 answer it in the deploy suites (test/helpers/deploy-odoo-suite.ts: a
// branch's new database has demo data on both, and 17.0 would refuse an option it lacks); here a
// stand-in odoo-bin, named as such (real Odoo cannot be made to fail its help on demand), shows that a
// binary which cannot answer runs with its own default and is asked again, and that an answer is kept
// until the binary is replaced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoFlags } from '../server/deploy/odoo-demo.ts';

test('an odoo-bin that cannot answer runs with its own default and is asked again; one that answered is asked once, until replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'odoo-demo-'));
  try {
    const bin = join(dir, 'odoo-bin');
    const asked = join(dir, 'asked');
    const ok = join(dir, 'ok');
    const calls = () => (existsSync(asked) ? readFileSync(asked, 'utf8').split('\n').length - 1 : 0);
    // The stand-in counts its calls and fails until `ok` exists, then answers as odoo-bin `server --help` does.
    const standIn = (option: string) => `#!/bin/sh\necho "$*" >> '${asked}'\n[ "$*" = "server --help" ] && [ -f '${ok}' ] || exit 1\necho '    ${option}  (demo data)'\n`;
    writeFileSync(bin, standIn('--with-demo'), { mode: 0o755 });
    assert.deepEqual(await demoFlags(bin), [], 'no answer: odoo-bin\'s own default');
    writeFileSync(ok, '');
    assert.deepEqual(await demoFlags(bin), ['--with-demo'], 'the failure was not remembered');
    assert.deepEqual(await demoFlags(bin), ['--with-demo']);
    assert.equal(calls(), 2, 'an answer is remembered');
    assert.equal(readFileSync(asked, 'utf8'), 'server --help\nserver --help\n');
    // The operator replaces the binary (an older Odoo): asked again.
    writeFileSync(bin, standIn('--without-demo=WITHOUT_DEMO'));
    utimesSync(bin, new Date(), new Date(Date.now() + 5_000));
    assert.deepEqual(await demoFlags(bin), []);
    assert.equal(calls(), 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an odoo-bin that starts a server instead of answering --help is stopped after the timeout, runs with its own default, and is not asked again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'odoo-demo-'));
  try {
    const bin = join(dir, 'odoo-bin');
    const asked = join(dir, 'asked');
    // The stand-in ignores --help and never exits (as a wrapper that always starts Odoo would).
    writeFileSync(bin, `#!/bin/sh\necho "$*" >> '${asked}'\nexec sleep 600\n`, { mode: 0o755 });
    const t = performance.now();
    assert.deepEqual(await demoFlags(bin, null, 500), []);
    assert.ok(performance.now() - t < 5_000, 'not held past the timeout');
    assert.deepEqual(await demoFlags(bin, null, 500), []);
    assert.equal(readFileSync(asked, 'utf8'), 'server --help\n', 'asked once: a binary that hangs is not asked at every deploy');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
