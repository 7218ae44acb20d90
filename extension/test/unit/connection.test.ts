// Finding the server on this machine: which OdooOps home is looked in (the setting odooops.home, then
// $ODOOOPS_HOME, then ~/.odooops), and, when no server is there, an error that says where it looked,
// why that is no server, and what to do. Real files in a temporary folder.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { findLocalConnection, noLocalServer, odooopsHomeOf, unreachableLocalServer } from '../../src/connection.ts';

describe('the OdooOps home', () => {
  it('is the setting when set (~ is the user\'s home), else $ODOOOPS_HOME, else ~/.odooops', () => {
    assert.deepEqual(odooopsHomeOf('/srv/odooops', { ODOOOPS_HOME: '/elsewhere' }), { home: '/srv/odooops', from: 'setting' });
    assert.deepEqual(odooopsHomeOf('~/work/.odooops', {}), { home: join(homedir(), 'work/.odooops'), from: 'setting' });
    assert.deepEqual(odooopsHomeOf('  ', { ODOOOPS_HOME: '/elsewhere' }), { home: '/elsewhere', from: 'ODOOOPS_HOME' });
    assert.deepEqual(odooopsHomeOf(undefined, {}), { home: join(homedir(), '.odooops'), from: 'default' });
  });
});

describe('the server on this machine', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'odooops-connection-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const conn = { url: 'http://127.0.0.1:4123', token: 'local-token', userId: '5d0c3c2e-8a7b-4a43-9d5e-0d6f8f1f2a11', mode: 'embedded', pid: 42 };

  it('is found through <home>/connection.json', () => {
    const home = mkdtempSync(join(dir, 'home-'));
    writeFileSync(join(home, 'connection.json'), JSON.stringify(conn));
    assert.deepEqual(findLocalConnection(home), { found: true, file: join(home, 'connection.json'), connection: { url: conn.url, token: conn.token } });
  });

  it('none there: the error names the file looked for, which setting chose it, and how to start one', () => {
    const home = join(dir, 'never-started');
    const lookup = findLocalConnection(home);
    assert.equal(lookup.found, false);
    assert.ok(!lookup.found);
    assert.equal(lookup.file, join(home, 'connection.json'));
    const { message, hint } = noLocalServer(lookup, 'setting');
    assert.equal(message, `no OdooOps server found on this machine: looked for ${join(home, 'connection.json')} (the setting odooops.home), and no such file: no server was started with this home, or it stopped`);
    assert.match(hint, /`npm start`/);
    assert.match(hint, /odooops\.home/);
    assert.match(hint, /Connect…/);
    assert.match(noLocalServer(lookup, 'ODOOOPS_HOME').message, /connection\.json \(\$ODOOOPS_HOME\), and/);
    assert.match(noLocalServer(lookup, 'default').message, /connection\.json, and/);
  });

  it('a file that is not a server\'s, half-written or not JSON: said so, not thrown', () => {
    const home = mkdtempSync(join(dir, 'home-'));
    writeFileSync(join(home, 'connection.json'), '{"url": "http://127.0.0.1:4');
    assert.match(String((findLocalConnection(home) as { why: string }).why), /not JSON/);
    writeFileSync(join(home, 'connection.json'), JSON.stringify({ url: 'http://127.0.0.1:4123' }));
    assert.match(String((findLocalConnection(home) as { why: string }).why), /not what an OdooOps server writes/);
  });

  it('a relative home is refused (it would depend on VS Code\'s working folder)', () => {
    assert.match(String((findLocalConnection('odooops-home') as { why: string }).why), /not an absolute path/);
  });

  it('a server that does not answer at the file\'s URL: named with the file, and how to start it again', () => {
    const { message, hint } = unreachableLocalServer('/root/.odooops/connection.json', conn.url, 'fetch failed');
    assert.equal(message, 'the server named in /root/.odooops/connection.json does not answer at http://127.0.0.1:4123 (fetch failed)');
    assert.match(hint, /`npm start`/);
  });
});
