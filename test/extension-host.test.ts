// The extension-host integration tests (extension/test/integration: mocha inside a real VS Code), run
// the standard way, with @vscode/test-electron's runTests, and code-server in place of a downloaded VS
// Code through a wrapper executable (test/helpers/vscode-test-host). The extension is loaded from its
// development folder; the server is `odooops server --demo` on the embedded default; a second admin's
// token lets the tests act as another person (approvals).
// Signing in: the same server also signs people in with GitHub (its GitHub API is a named test double,
// test/helpers/github-double.ts; sessions live 20 s, so they are refreshed while the tests watch), and
// VS Code's GitHub account is played by a test-only extension (extension/test/github-auth-double, with
// VS Code's built-in GitHub sign-in disabled). A second server is a Supabase control plane: its Auth is
// a stand-in for GoTrue (test/helpers/gotrue-double.ts), its Realtime the server's own gateway.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTests } from '@vscode/test-electron';
import { ROOT, freeTcpPort, installCodeServer, run, startDemoServer, stopChildren } from './helpers/code-server.ts';
import { startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';
import { startGitHubDouble, type GitHubDouble } from './helpers/github-double.ts';
import { startGoTrueDouble, type GoTrueDouble } from './helpers/gotrue-double.ts';
import { clusterDir } from '../server/db/embedded.ts';
import { homeFiles } from '../server/paths.ts';

const children: ChildProcess[] = [];
let scratch: string;
let home: string;
let github: GitHubDouble;
let supabase: TestControlPlane;
let gotrue: GoTrueDouble;
const JWT_SECRET = 'extension-host-supabase-jwt-secret-of-32-characters-or-more';
const ANON_KEY = 'extension-host-anon-key';
// GitHub accounts the double knows: the person at this VS Code, and a colleague who signs in elsewhere
// (whose GitHub name is Markdown someone could try to slip into a tooltip).
const OCTOCAT = { token: 'gho_octocat_extension_host', id: 583231, login: 'octocat', name: 'The Octocat', email: 'octocat@example.invalid' };
const HUBOT = { token: 'gho_hubot_extension_host', id: 480938, login: 'hubot', name: 'Hubot [bot](command:odooops.signOut)', email: 'hubot@example.invalid' };

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-ext-host-'));
  await installCodeServer();
  // The extension as its development folder holds it (dist/ built), and the tests beside it.
  // (minified, as packaged: the activation time and size printed are the shipped ones).
  await run(process.execPath, ['esbuild.mjs', '--production', '--only=extension,webview'], { cwd: ROOT });
  await run(process.execPath, ['esbuild.mjs', '--only=integration'], { cwd: ROOT });
  home = join(scratch, 'odooops-home');
  github = await startGitHubDouble();
  for (const a of [OCTOCAT, HUBOT]) github.addToken(a.token, { id: a.id, login: a.login, name: a.name, emails: [{ email: a.email, primary: true, verified: true }] });
  // The operator's registry: a local runtime the demo may use, where "Show Odoo log" finds a log to follow.
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeFileSync(join(home, 'infrastructure.yaml'), JSON.stringify({ runtimes: { 'it-odoo': { kind: 'local', odooBin: '/usr/bin/true', httpPorts: [18069, 18069], projects: ['demo'] } } }));
  await startDemoServer(home, children, {}, [
    '--github-api-url', github.url, '--session-ttl', '20', '--executors', join(ROOT, 'test', 'fixtures', 'chatty.ts'),
  ]);
  // The Supabase control plane: told its Auth's URL before the stand-in can listen there. That is on
  // 127.0.0.2: to code-server (a remote window) 127.0.0.1 is the remote machine's, whose ports it
  // forwards, rewriting the URL it opens; a Supabase project's URL is opened as it is.
  const authPort = await freeTcpPort();
  const authUrl = `http://127.0.0.2:${authPort}`;
  supabase = await startControlPlane({ worker: false, jwtSecret: JWT_SECRET, realtimeUrl: authUrl, realtimeKey: ANON_KEY });
  // 91 s tokens: supabase-js renews them by itself (its 30 s tick, 90 s margin) while the tests watch.
  gotrue = await startGoTrueDouble({ pool: supabase.pool, jwtSecret: JWT_SECRET, anonKey: ANON_KEY, realtimeUpstream: supabase.server.url, host: '127.0.0.2', port: authPort, expiresIn: 91 });
  assert.equal(gotrue.url, authUrl);
  gotrue.signInAs({ id: OCTOCAT.id, login: OCTOCAT.login, name: OCTOCAT.name, email: OCTOCAT.email });
  const owner = await supabase.user('owner@example.invalid', { instanceAdmin: true });
  assert.equal((await owner.call('POST', '/api/projects', { slug: 'sb-team', name: 'Team on Supabase' })).status, 201);
  assert.equal((await owner.call('POST', '/api/projects/sb-team/invitations', { githubLogin: OCTOCAT.login, role: 'developer' })).status, 201);
});

after(async () => {
  await stopChildren(children);
  await gotrue?.close();
  await supabase?.close();
  await github?.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('extension-host tests (mocha in code-server through runTests): tree, Realtime, commands, approvals, downloads, sign-in', async () => {
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
    // The extension under test, and the test-only stand-in for VS Code's GitHub account.
    extensionDevelopmentPath: [join(ROOT, 'extension'), join(ROOT, 'extension', 'test', 'github-auth-double')],
    extensionTestsPath: join(ROOT, 'extension', 'dist-test', 'index.cjs'),
    launchArgs: [workspace, `--user-data-dir=${join(scratch, 'user')}`, `--extensions-dir=${join(scratch, 'extensions')}`, '--disable-extension=vscode.github-authentication'],
    extensionTestsEnv: {
      ODOOOPS_HOME: home, ODOOOPS_IT_PEER_TOKEN: token, ODOOOPS_IT_SCRATCH: scratch, ODOOOPS_VSCODE_TEST_SCREENSHOT: screenshot,
      ODOOOPS_IT_GITHUB_TOKEN: OCTOCAT.token, ODOOOPS_IT_GITHUB_LOGIN: OCTOCAT.login, ODOOOPS_IT_HUBOT_TOKEN: HUBOT.token,
      ODOOOPS_IT_SUPABASE_URL: supabase.server.url,
      // The demo's control plane itself, for a test fixture no API makes (a finished build run).
      ODOOOPS_IT_DATABASE_URL: demoDatabaseUrl(),
    },
    stdout: collect, stderr: collect,
  }).catch((err) => { assert.fail(`${(err as Error).message}\n${output.slice(-6000)}`); });
  assert.equal(code, 0);
  // mocha's own summary, as the extension host printed it: every test ran and passed.
  assert.match(output, /\b24 passing\b/, output.slice(-4000));
  // mocha says "N failing" on a line of its own (a test may have "failing" in its title).
  assert.doesNotMatch(output, /^\s*\d+ failing\b/m);
  const figures = JSON.parse(readFileSync(join(scratch, 'activation.json'), 'utf8')) as { activationMs: number; bundleBytes: number };
  console.log(`extension activation ${figures.activationMs.toFixed(0)} ms, extension.cjs ${(figures.bundleBytes / 1024).toFixed(0)} KiB`);
  // GitHub was asked who the tokens are, never given anything else; Supabase Auth saw a PKCE exchange.
  assert.ok(github.calls.some((c) => c.path === '/user' && c.auth === `Bearer ${OCTOCAT.token}`), 'the server asked GitHub who octocat is');
  assert.ok(gotrue.calls.some((c) => c.grant === 'pkce' && c.status === 200), 'a PKCE code was exchanged');
});

/** The embedded control plane of the demo server (its port is in the cluster's postmaster.pid). */
function demoDatabaseUrl(): string {
  const port = readFileSync(join(clusterDir(home), 'postmaster.pid'), 'utf8').split('\n')[3]!.trim();
  const password = readFileSync(homeFiles(home).pgPassword, 'utf8').trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}
