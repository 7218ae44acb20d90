// The extension-host integration tests (extension/test/integration: mocha inside a real VS Code), run
// the standard way, with @vscode/test-electron's runTests, and code-server in place of a downloaded VS
// Code through a wrapper executable (test/helpers/vscode-test-host). The extension is loaded from its
// development folder; the server is `odooops server --demo` on the embedded default; a second admin's
// token lets the tests act as another person (approvals).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTests } from '@vscode/test-electron';
import { ROOT, installCodeServer, run, startDemoServer, stopChildren } from './helpers/code-server.ts';

const children: ChildProcess[] = [];
let scratch: string;
let home: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-ext-host-'));
  await installCodeServer();
  // The extension as its development folder holds it (dist/ built), and the tests beside it.
  // (minified, as packaged: the activation time and size printed are the shipped ones).
  await run(process.execPath, ['esbuild.mjs', '--production', '--only=extension,webview'], { cwd: ROOT });
  await run(process.execPath, ['esbuild.mjs', '--only=integration'], { cwd: ROOT });
  home = join(scratch, 'odooops-home');
  await startDemoServer(home, children);
});

after(async () => {
  await stopChildren(children);
  rmSync(scratch, { recursive: true, force: true });
});

test('extension-host tests (mocha in code-server through runTests): tree, Realtime, commands, approvals, downloads', async () => {
  // A second admin of the demo project, with a token of its own.
  const cli = (...args: string[]) => run(process.execPath, [join(ROOT, 'server', 'cli', 'main.ts'), ...args], { env: { ...process.env, ODOOOPS_HOME: home } });
  const peer = randomUUID();
  const token = (await cli('token', '--user', peer)).stdout.trim();
  await cli('member', 'add', 'demo', peer, '--role', 'admin', '--name', 'Second admin');
  const workspace = join(scratch, 'workspace');
  mkdirSync(workspace);
  const screenshot = join(ROOT, 'test-artifacts', 'extension-host-failure.png');
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  let output = '';
  const collect = { write: (d: string | Buffer) => { output += d; process.stdout.write(d); return true; } } as NodeJS.WritableStream;
  const code = await runTests({
    vscodeExecutablePath: join(ROOT, 'test', 'helpers', 'vscode-test-host'),
    extensionDevelopmentPath: join(ROOT, 'extension'),
    extensionTestsPath: join(ROOT, 'extension', 'dist-test', 'index.cjs'),
    launchArgs: [workspace, `--user-data-dir=${join(scratch, 'user')}`, `--extensions-dir=${join(scratch, 'extensions')}`],
    extensionTestsEnv: { ODOOOPS_HOME: home, ODOOOPS_IT_PEER_TOKEN: token, ODOOOPS_IT_SCRATCH: scratch, ODOOOPS_VSCODE_TEST_SCREENSHOT: screenshot },
    stdout: collect, stderr: collect,
  }).catch((err) => { assert.fail(`${(err as Error).message}\n${output.slice(-6000)}`); });
  assert.equal(code, 0);
  // mocha's own summary, as the extension host printed it: every test ran and passed.
  assert.match(output, /\b12 passing\b/, output.slice(-4000));
  assert.doesNotMatch(output, /\bfailing\b/);
  const figures = JSON.parse(readFileSync(join(scratch, 'activation.json'), 'utf8')) as { activationMs: number; bundleBytes: number };
  console.log(`extension activation ${figures.activationMs.toFixed(0)} ms, extension.cjs ${(figures.bundleBytes / 1024).toFixed(0)} KiB`);
});
