// Short passwords: a database password of the registry shorter than 12 characters is refused where it
// is read (registry load, odooops infra check, the worker that resolves it), naming the entry and what
// to do; the redactor hides a short secret only as a whole word, so a line like
// "prod_odooops_mask_6" is never turned into "prod_[redacted]ops_mask_6" (which tells the password).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Infrastructure, InfraError } from '../server/infra/registry.ts';
import { Redactor, STRONG_SECRET_LENGTH } from '../server/worker/redact.ts';
import { eventually, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VAR = `ODOOOPS_SHORT_PW_TEST_${process.pid}`;
const scratch = mkdtempSync(join(tmpdir(), 'odooops-short-pw-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const registryFile = (name: string, password = `env:${VAR}`) => {
  const path = join(scratch, name);
  writeFileSync(path, `databaseServers:\n  main-pg: { host: 127.0.0.1, port: 9, password: "${password}", projects: ["*"] }\n  open-pg: { host: 127.0.0.1, projects: ["*"] }\n`);
  return path;
};
const withVar = <T>(value: string | undefined, fn: () => T): T => {
  const before = process.env[VAR];
  if (value === undefined) delete process.env[VAR];
  else process.env[VAR] = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env[VAR];
    else process.env[VAR] = before;
  }
};

test('the redactor hides a short secret only where it stands as a word, a long one everywhere', () => {
  const r = new Redactor();
  r.add('odoo');
  // The line that used to read "prod_[redacted]ops_mask_6" (and so told the password).
  assert.equal(r.apply('creating prod_odooops_mask_6 on the server odoo-pg'), 'creating prod_odooops_mask_6 on the server [redacted]-pg');
  assert.equal(r.apply('PGPASSWORD=odoo pg_dump'), 'PGPASSWORD=[redacted] pg_dump');
  assert.equal(r.apply('password "odoo", again:odoo.'), 'password "[redacted]", again:[redacted].');
  assert.equal(r.apply('odoo'), '[redacted]');
  assert.equal(r.apply('odoo_prod odoo1 xodoo Odoo'), 'odoo_prod odoo1 xodoo Odoo', 'inside a word (letters, digits, "_") it stays');
  // A short secret that begins or ends with punctuation: only its word sides need a boundary.
  const p = new Redactor();
  p.add('-k9!');
  assert.equal(p.apply('x-k9!y a-k9!'), 'x[redacted]y a[redacted]');
  // From STRONG_SECRET_LENGTH on, anywhere (a long secret inside a word is still that secret).
  const long = 'Zq7-long-enough';
  assert.ok(long.length >= STRONG_SECRET_LENGTH);
  const l = new Redactor();
  l.add(long);
  assert.equal(l.apply(`prefix${long}suffix ${long}${long}`), 'prefix[redacted]suffix [redacted]');
  // Both kinds together: the longest that counts at each place wins.
  const both = new Redactor();
  both.add('mask');
  both.add('odooops_mask_secret');
  assert.equal(both.apply('a odooops_mask_secret b mask c odooops_mask_6'), 'a [redacted] b [redacted] c odooops_mask_6');
});

test('registry load reports a short database password, naming the entry and what to do, and keeps the others usable', () => {
  const path = registryFile('short.yaml');
  const infra = withVar('kiwi', () => Infrastructure.load(path));
  assert.equal(infra.warnings.length, 1, 'reported');
  const [warning] = infra.warnings as [string];
  assert.match(warning, new RegExp(`${path}: the password of the database server "main-pg" \\(env:${VAR}\\) is shorter than 12 characters`));
  assert.match(warning, /give the role a random password of at least 12 characters \(ALTER ROLE … PASSWORD '…'; openssl rand -base64 18 makes one\), put it where the registry points, and run odooops infra check/);
  assert.match(warning, /runs on this server fail until then/);
  assert.ok(!/kiwi/.test(warning), 'the message does not show the password');
  // The other entries still resolve: one weak password does not stop every project.
  assert.equal(withVar('kiwi', () => infra.database('open-pg', 'acme_prod', 'acme').password), undefined);
  // Long enough: nothing to say. Not readable on this machine: nothing (the worker that reads it checks it).
  assert.deepEqual(withVar('kiwi-kiwi-kiwi', () => Infrastructure.load(path)).warnings, []);
  assert.deepEqual(withVar(undefined, () => Infrastructure.load(path)).warnings, []);
  assert.deepEqual(Infrastructure.load(registryFile('missing-file.yaml', `file:${join(scratch, 'nope')}`)).warnings, []);
  const empty = join(scratch, 'empty-pw');
  writeFileSync(empty, '\n');
  assert.match(Infrastructure.load(registryFile('empty.yaml', `file:${empty}`)).warnings.join(''), /"main-pg" \(file:.*\) is shorter than 12 characters/);
});

test('the worker refuses it too when the password it resolves is short (named by the server only)', () => {
  const infra = withVar(undefined, () => Infrastructure.load(registryFile('late.yaml')));
  withVar('kiwi', () => {
    assert.throws(() => infra.database('main-pg', 'acme_prod', 'acme'), (e: Error) => {
      assert.ok(e instanceof InfraError);
      assert.match(e.message, /^the password of the database server "main-pg" is shorter than 12 characters/);
      assert.ok(!e.message.includes(VAR) && !e.message.includes('kiwi'), 'neither the reference nor the password: a run log shows it');
      return true;
    });
  });
  assert.equal(withVar('kiwi-kiwi-kiwi', () => infra.database('main-pg', 'acme_prod', 'acme').password), 'kiwi-kiwi-kiwi');
  assert.equal(infra.database('open-pg', 'acme_prod', 'acme').password, undefined, 'no password (trust, peer, .pgpass) is not refused');
});

test('odooops infra check says the same, and exits 2', async () => {
  const path = registryFile('check.yaml');
  const check = (value: string) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['server/cli/main.ts', 'infra', 'check', '--infra', path], { cwd: ROOT, env: { ...process.env, [VAR]: value }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stdout, stderr }));
  });
  const short = await check('kiwi');
  assert.equal(short.code, 2, short.stderr);
  assert.match(short.stderr, /the password of the database server "main-pg" \(env:ODOOOPS_SHORT_PW_TEST_\d+\) is shorter than 12 characters/);
  assert.ok(!short.stderr.includes('kiwi') && !short.stdout.includes('kiwi'));
  const ok = await check('kiwi-kiwi-kiwi');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /2 entries/);
});

let cp: TestControlPlane | undefined;
before(async () => {
  // Unset when the server reads the registry; set (short) by the time a run resolves it.
  delete process.env[VAR];
  cp = await startControlPlane({
    executorModules: ['test/fixtures/executors.ts'],
    infra: { databaseServers: { 'main-pg': { host: '127.0.0.1', port: 9, password: `env:${VAR}`, projects: ['*'] } } },
  });
});
after(async () => {
  delete process.env[VAR];
  await cp?.close();
});

test('a run whose password turns out short fails before it logs anything with it; a reload that brings one in reports it', async () => {
  const admin = await cp!.user(undefined, { instanceAdmin: true });
  assert.equal((await admin.call('POST', '/api/projects', { slug: 'kiwi-shop', name: 'Kiwi' })).status, 201);
  const env = await admin.call('POST', '/api/projects/kiwi-shop/environments', { name: 'dev', stage: 'development', database: { server: 'main-pg', name: 'kiwi_dev' } });
  assert.equal(env.status, 201, JSON.stringify(env.body));
  process.env[VAR] = 'kiwi';
  const q = await admin.call('POST', '/api/projects/kiwi-shop/environments/dev/runs', { kind: 'test.secret', params: { token: 'a-token-long-enough-to-hide' } });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  const run = await eventually('the run ends', async () => {
    const r = (await admin.call('GET', `/api/runs/${q.body.id}`)).body;
    return r.status === 'failed' || r.status === 'succeeded' ? r : undefined;
  });
  assert.equal(run.status, 'failed');
  assert.match(run.error, /the password of the database server "main-pg" is shorter than 12 characters/);
  const lines = (await admin.call('GET', `/api/runs/${q.body.id}/logs`)).body.lines.map((l: { line: string }) => l.line);
  for (const text of [...lines, run.error]) {
    assert.ok(!/kiwi(?!_dev|-shop)/.test(text), `the password is not in: ${text}`);
    assert.ok(!text.includes('[redacted]ops'), text);
  }

  // SIGHUP with the short password readable: the registry is read (the new entry works), the weak one is reported.
  await cp!.setInfra({ databaseServers: { 'main-pg': { host: '127.0.0.1', port: 9, password: `env:${VAR}`, projects: ['*'] }, 'more-pg': { host: '127.0.0.2', projects: ['*'] } } });
  assert.ok(cp!.server.infra.has('database_server', 'more-pg'));
  assert.match(cp!.server.infra.warnings.join(''), /"main-pg" \(env:ODOOOPS_SHORT_PW_TEST_\d+\) is shorter than 12 characters/);
});
