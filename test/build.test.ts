// The esbuild bundle of the server/CLI is what gets installed (bin/odooops.mjs prefers it): build it
// and start a real server from it, since a bundle can break what the sources do not (file paths).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { call, eventually, tempHome } from './helpers/control-plane.ts';

const root = join(import.meta.dirname, '..');
const run = promisify(execFile);

test('npm run build bundles the CLI, and the bundled server starts, migrates and answers', async () => {
  const built = await run(process.execPath, ['esbuild.mjs'], { cwd: root });
  assert.match(built.stdout, /server\/CLI: dist\/odooops\.mjs \d+ KiB/);
  const help = await run(process.execPath, [join(root, 'bin', 'odooops.mjs'), '--help']);
  assert.match(help.stdout, /odooops server/);

  const home = tempHome();
  const child = spawn(process.execPath, [join(root, 'dist', 'odooops.mjs'), 'server', '--fast', '--demo'], {
    env: { ...process.env, ODOOOPS_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  try {
    const conn = await eventually('the bundled server', async () => {
      const file = join(home, 'connection.json');
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { url: string; token: string }) : null;
    }, 60_000);
    // connection.json is written just before the banner is printed.
    await eventually('the banner', async () => /OdooOps server listening on http:\/\/127\.0\.0\.1:\d+ \(embedded control plane, data in/.test(output), 10_000);
    const envs = await call(conn.url, conn.token, 'GET', '/api/projects/demo/environments');
    assert.deepEqual(envs.body.map((e: { name: string }) => e.name), ['production', 'staging', 'dev-feature']);
    // The demo's health probe runs through the bundled worker against the demo database.
    const queued = await call(conn.url, conn.token, 'POST', '/api/projects/demo/environments/production/runs', { kind: 'health' });
    assert.equal(queued.status, 201);
    const done = await eventually('the demo health run', async () => {
      const r = await call(conn.url, conn.token, 'GET', `/api/runs/${queued.body.id}`);
      return ['succeeded', 'failed'].includes(r.body.status) ? r.body : null;
    });
    assert.equal(done.status, 'succeeded', done.error);
    assert.equal(done.result.odooVersion, '17.0.1.3');
    // The demo's staging is cloned from production as soon as the worker runs (neutralized, masked);
    // production's daily backup is scheduled at once. Both through the bundle, with its SQL and profile files.
    const runs = await eventually('the demo clone and daily backup', async () => {
      const r = await call(conn.url, conn.token, 'GET', '/api/runs?project=demo');
      const list = r.body as { kind: string; status: string; environment: string; error: string | null }[];
      const ended = list.filter((x) => ['clone', 'backup'].includes(x.kind) && ['succeeded', 'failed'].includes(x.status));
      return ended.length === 2 ? ended : null;
    }, 120_000);
    for (const r of runs) assert.equal(r.status, 'succeeded', `${r.kind}: ${r.error}`);
    const backups = await call(conn.url, conn.token, 'GET', '/api/projects/demo/environments/staging/backups');
    assert.equal(backups.body[0].masked, true);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(home, { recursive: true, force: true });
  }
});
