// `odooops login`, `logout` and `member invite` as a person runs them: the CLI as a child process,
// GitHub's device flow and API played by a named test double (test/helpers/github-double.ts), the real
// server, and the session kept in the credentials file (ODOOOPS_CREDENTIAL_STORE=file: this machine has
// no keychain, and tests must not touch a real one).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as C from '../contract/index.ts';
import { call, seedProject, startControlPlane, tempHome, type TestControlPlane } from './helpers/control-plane.ts';
import { startGitHubDouble, type GitHubDouble } from './helpers/github-double.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const P = 'cli-team';

let gh: GitHubDouble;
let cp: TestControlPlane;
/** The person's own OdooOps directory on their machine (where odooops login keeps the session). */
let clientHome: string;

before(async () => {
  gh = await startGitHubDouble();
  cp = await startControlPlane({
    executorModules: ['test/fixtures/executors.ts'],
    githubApiUrl: gh.url, githubWebUrl: gh.url, githubClientId: 'Iv1.test-client', signInRateLimit: { burst: 1000, perMinute: 1000 },
  });
  await seedProject(cp.pool, cp.server.userId, P, [{ name: 'dev', stage: 'development', db: 'cli_team_dev' }]);
  await cp.pool.query(`update ops.environments set db_server = 'test-db' where db_name = 'cli_team_dev'`);
  clientHome = tempHome('odooops-client-');
  // The same machine also runs a local server: its connection.json is the last resort.
  copyFileSync(join(cp.home, 'connection.json'), join(clientHome, 'connection.json'));
});
after(async () => {
  await cp?.close();
  await gh?.close();
  rmSync(clientHome, { recursive: true, force: true });
});

interface CliResult { code: number; stdout: string; stderr: string }
function cli(args: string[], opts: { home?: string; stdin?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ODOOOPS_HOME: opts.home ?? clientHome, ODOOOPS_CREDENTIAL_STORE: 'file', ...opts.env };
  delete env.ODOOOPS_URL;
  if (!opts.env?.ODOOOPS_TOKEN) delete env.ODOOOPS_TOKEN;
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['server/cli/main.ts', ...args], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`odooops ${args.join(' ')}: ${err.code ?? err.signal}: ${stderr}`));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin!.end(opts.stdin ?? '');
  });
}
const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
/** As the operator (the local server's own token): an instance admin, admin of the project. */
const asOperator = (args: string[]) => cli([...args, '--token', cp.server.token, '--url', cp.server.url]);
const credentials = () => JSON.parse(readFileSync(join(clientHome, 'credentials.json'), 'utf8'));

test('member invite (admins only), then a device-flow login joins the project and names show everywhere', async () => {
  const invite = await asOperator(['member', 'invite', P, '--github', 'Dev-Dora', '--role', 'developer']);
  assert.equal(invite.code, 0, show(invite));
  assert.match(invite.stdout, /invited GitHub user Dev-Dora to cli-team as developer until .*: they join when they sign in/);
  const usage = await asOperator(['member', 'invite', P, '--role', 'viewer']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /give --github LOGIN or --email E/);

  gh.addToken('gho_dora', { id: 4242, login: 'dev-dora', name: 'Dora Developer', emails: [{ email: 'dora@example.invalid', primary: true, verified: true }] });
  gh.nextDeviceFlow(['authorization_pending', 'slow_down', { token: 'gho_dora' }]);
  const t0 = gh.calls.length;
  const login = await cli(['login', '--url', cp.server.url]);
  assert.equal(login.code, 0, show(login));
  assert.match(login.stderr, new RegExp(`Open ${gh.url}/login/device in a browser and enter the code WDJB-MJH\\d+`));
  assert.match(login.stdout, /Signed in to http:\/\/127\.0\.0\.1:\d+ as Dora Developer \(dev-dora\); the session is kept in .*credentials\.json/);
  assert.match(login.stdout, /Joined cli-team as developer\./);
  // The device flow as GitHub wants it: the app's client id and the scopes, then polling that waited as told.
  const flow = gh.calls.slice(t0).filter((c) => c.path.startsWith('/login/'));
  assert.deepEqual(flow[0]!.body, { client_id: 'Iv1.test-client', scope: 'read:user user:email' });
  const polls = flow.filter((c) => c.path === '/login/oauth/access_token');
  assert.equal(polls.length, 3);
  assert.equal(polls[0]!.body!.grant_type, 'urn:ietf:params:oauth:grant-type:device_code');
  assert.ok(polls[2]!.at - polls[1]!.at >= 900, `after slow_down the CLI waited the new interval (${polls[2]!.at - polls[1]!.at} ms)`);

  // Kept in a 0600 file, per server, and this server is now the default.
  assert.equal(statSync(join(clientHome, 'credentials.json')).mode & 0o777, 0o600);
  const creds = credentials();
  const key = cp.server.url;
  assert.equal(creds.default, key);
  assert.equal(creds.servers[key].store, 'file');
  assert.equal(creds.servers[key].session.user.githubLogin, 'dev-dora');

  // Later commands use the stored session, ahead of the local server's connection.json.
  const whoami = await cli(['whoami']);
  assert.equal(whoami.code, 0, show(whoami));
  assert.match(whoami.stdout, /^Dora Developer \(dev-dora\), [0-9a-f-]{36} <dora@example\.invalid> at http/);
  const members = await cli(['member', 'list', P]);
  assert.equal(members.code, 0, show(members));
  assert.match(members.stdout, /^NAME\s+GITHUBLOGIN\s+ROLE\s+USERID$/m);
  assert.match(members.stdout, /^Dora Developer\s+dev-dora\s+developer\s+[0-9a-f-]{36}$/m);
  // --token (or ODOOOPS_TOKEN) comes first.
  const operator = await cli(['whoami', '--token', cp.server.token]);
  // The operator is named after the server's OS account (what others see in "by …").
  const account = userInfo().username.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(operator.stdout, new RegExp(`^${account} \\(operator\\), [0-9a-f-]{36} <local@odooops\\.invalid> at .*, instance admin$`, 'm'));
  const viaEnv = await cli(['whoami'], { env: { ODOOOPS_TOKEN: cp.server.token } });
  assert.match(viaEnv.stdout, /instance admin/);

  // A developer cannot invite; the admin lists and withdraws invitations.
  const refused = await cli(['member', 'invite', P, '--email', 'friend@example.invalid', '--role', 'admin']);
  assert.equal(refused.code, 3, show(refused));
  assert.match(refused.stderr, /only admins of "cli-team" can invite people; you are developer/);
  const pending = await asOperator(['member', 'invite', P, '--email', 'later@example.invalid', '--role', 'viewer', '--json']);
  const inv = C.Invitation.parse(JSON.parse(pending.stdout));
  const list = await asOperator(['member', 'invitations', P]);
  assert.match(list.stdout, new RegExp(`^${inv.id}\\s+email:later@example\\.invalid\\s+viewer\\s+pending until`, 'm'));
  assert.match(list.stdout, /github:Dev-Dora\s+developer\s+accepted /);
  const un = await asOperator(['member', 'uninvite', P, inv.id]);
  assert.equal(un.code, 0, show(un));
  assert.doesNotMatch((await asOperator(['member', 'invitations', P])).stdout, /later@example/);
});

test('a credentials file others can read is refused, as ssh refuses such a key', async () => {
  const file = join(clientHome, 'credentials.json');
  chmodSync(file, 0o644);
  try {
    const r = await cli(['whoami']);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /credentials\.json is readable by other users \(mode 0644\) or not yours: OdooOps ignores it/);
    assert.match(r.stderr, /chmod 600 /);
  } finally {
    chmodSync(file, 0o600);
  }
  assert.equal((await cli(['whoami'])).code, 0);
});

test('login --with-token reads a GitHub token from stdin; no invitation is a clear refusal and nothing is stored', async () => {
  const home = tempHome('odooops-client-');
  try {
    gh.addToken('gho_stranger', { id: 5151, login: 'stranger-sam' });
    const r = await cli(['login', '--url', cp.server.url, '--with-token'], { home, stdin: 'gho_stranger\n' });
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /no invitation for stranger-sam on this server: ask a project admin to run `odooops member invite PROJECT --github stranger-sam --role ROLE`/);
    assert.throws(() => statSync(join(home, 'credentials.json')));
    const empty = await cli(['login', '--url', cp.server.url, '--with-token'], { home, stdin: '' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /--with-token reads a GitHub token from stdin, and there was none/);

    await asOperator(['member', 'invite', P, '--github', 'stranger-sam', '--role', 'viewer']);
    const ok = await cli(['login', '--url', cp.server.url, '--with-token', '--json'], { home, stdin: 'gho_stranger\n' });
    assert.equal(ok.code, 0, show(ok));
    assert.deepEqual(JSON.parse(ok.stdout).joined, [{ project: P, role: 'viewer' }]);
    // Signing in again replaces the kept session and ends the old one on the server.
    const keptBefore = JSON.parse(readFileSync(join(home, 'credentials.json'), 'utf8')).servers[cp.server.url].session;
    const again = await cli(['login', '--url', cp.server.url, '--with-token'], { home, stdin: 'gho_stranger\n' });
    assert.equal(again.code, 0, show(again));
    assert.equal((await call(cp.server.url, keptBefore.accessToken, 'GET', '/api/me')).body.error.code, 'session_ended');
    const keptNow = JSON.parse(readFileSync(join(home, 'credentials.json'), 'utf8')).servers[cp.server.url].session;
    assert.equal((await call(cp.server.url, keptNow.accessToken, 'GET', '/api/me')).status, 200);
    // GitHub declining the device flow, and the code running out: not signed in, saying so.
    gh.nextDeviceFlow(['authorization_pending', 'access_denied']);
    const denied = await cli(['login', '--url', cp.server.url], { home });
    assert.equal(denied.code, 3);
    assert.match(denied.stderr, /you declined to authorize OdooOps on GitHub/);
    gh.nextDeviceFlow(['expired_token']);
    const late = await cli(['login', '--url', cp.server.url], { home });
    assert.match(late.stderr, /the code expired before it was entered at GitHub/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a server without a GitHub OAuth app says how to sign in anyway', async () => {
  const bare = await startControlPlane({ worker: false, githubApiUrl: gh.url });
  const home = tempHome('odooops-client-');
  try {
    const r = await cli(['login', '--url', bare.server.url], { home });
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /has no GitHub OAuth app for signing in from a terminal/);
    assert.match(r.stderr, /--github-client-id .*gh auth token \| odooops login --with-token/s);
  } finally {
    await bare.close();
    rmSync(home, { recursive: true, force: true });
  }
});

test('logout ends the session on the server; an unreachable server is forgotten anyway, saying what that means', async () => {
  const before = credentials().servers[cp.server.url].session as { accessToken: string; refreshToken: string };
  const out = await cli(['logout']);
  assert.equal(out.code, 0, show(out));
  assert.match(out.stdout, /Signed out of http:\/\/127\.0\.0\.1:\d+: the session has ended\./);
  assert.equal((await call(cp.server.url, before.accessToken, 'GET', '/api/me')).status, 401);
  assert.equal((await call(cp.server.url, undefined, 'POST', '/api/auth/refresh', { refreshToken: before.refreshToken })).status, 401);
  assert.deepEqual(credentials().servers, {});
  // Back to the local server's connection.json.
  assert.match((await cli(['whoami'])).stdout, /instance admin/);
  assert.match((await cli(['logout'])).stdout, /not signed in to/);

  // A session for a server that is gone.
  const gone = 'http://127.0.0.1:9';
  writeFileSync(join(clientHome, 'credentials.json'), JSON.stringify({
    version: 1, default: gone,
    servers: { [gone]: { store: 'file', session: { ...before, expiresAt: new Date(Date.now() + 3_600_000).toISOString(), user: { id: cp.server.userId, name: null, githubLogin: null, email: null } } } },
  }), { mode: 0o600 });
  const r = await cli(['logout']);
  assert.equal(r.code, 4, show(r));
  assert.match(r.stdout, /Forgot the session for http:\/\/127\.0\.0\.1:9 here, but could not end it on the server .*: its tokens stay valid until they expire/);
  assert.deepEqual(credentials(), { version: 1, default: null, servers: {} });
});

test('a 3 s session is refreshed by the CLI as it goes: between commands and during a long one', async () => {
  const short = await startControlPlane({ executorModules: ['test/fixtures/executors.ts'], githubApiUrl: gh.url, sessionTtlSeconds: 3 });
  const home = tempHome('odooops-client-');
  try {
    const { projectId } = await seedProject(short.pool, short.server.userId, 'short', [{ name: 'dev', stage: 'development', db: 'short_dev' }]);
    await short.pool.query(`update ops.environments set db_server = 'test-db' where project_id = $1`, [projectId]);
    await cli(['member', 'invite', 'short', '--github', 'quick-quinn', '--role', 'developer', '--url', short.server.url, '--token', short.server.token]);
    gh.addToken('gho_quinn', { id: 6161, login: 'quick-quinn', name: 'Quinn' });
    const login = await cli(['login', '--url', short.server.url, '--with-token'], { home, stdin: 'gho_quinn' });
    assert.equal(login.code, 0, show(login));
    const stored = () => JSON.parse(readFileSync(join(home, 'credentials.json'), 'utf8')).servers[short.server.url].session as { accessToken: string; refreshToken: string };
    const first = stored();

    // Between commands: the stored token has expired; the next command refreshes it first.
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await call(short.server.url, first.accessToken, 'GET', '/api/me')).body.error.code, 'token_expired');
    const who = await cli(['whoami'], { home });
    assert.equal(who.code, 0, show(who));
    assert.match(who.stdout, /^Quinn \(quick-quinn\)/);
    assert.notEqual(stored().refreshToken, first.refreshToken, 'the rotated session was stored');

    // During one: `run queue --wait` polls for ~8 s while tokens expire every 3 s.
    const generationBefore = (await short.pool.query('select generation from ops.sessions')).rows[0].generation as number;
    const waiting = cli(['run', 'queue', 'short', 'dev', 'test.block', '--wait'], { home });
    const runId = await (async () => {
      for (let i = 0; i < 100; i++) {
        const { rows } = await short.pool.query(`select id from ops.runs where kind = 'test.block' and status = 'running'`);
        if (rows[0]) return rows[0].id as number;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the run never started');
    })();
    await new Promise((r) => setTimeout(r, 8000));
    assert.equal((await call(short.server.url, short.server.token, 'POST', `/api/runs/${runId}/cancel`)).status, 200);
    const r = await waiting;
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, new RegExp(`run ${runId} test.block on short/dev: cancelled`));
    assert.doesNotMatch(r.stderr, /expired|signed out|unauthorized/i);
    const { rows } = await short.pool.query('select generation, revoked_at from ops.sessions');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].revoked_at, null);
    assert.ok(rows[0].generation >= generationBefore + 2, `refreshed during the command (generation ${generationBefore} → ${rows[0].generation})`);
  } finally {
    await short.close();
    rmSync(home, { recursive: true, force: true });
  }
});

test('two odooops processes writing the credentials file at once lose neither one\'s session', async () => {
  const home = tempHome('odooops-cred-race-');
  try {
    const module = fileURLToPath(new URL('../server/cli/credentials.ts', import.meta.url));
    // Each process saves its own server's session 150 times; the last one written must be the one kept.
    const writer = (server: string) => new Promise<void>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', `
        import { CredentialStore } from ${JSON.stringify(module)};
        const storage = new CredentialStore(${JSON.stringify(home)}).storageFor(${JSON.stringify(server)});
        for (let g = 1; g <= 300; g++) await storage.save({ accessToken: 'a', refreshToken: 'r.' + g, expiresAt: new Date().toISOString(), user: { id: '${'0'.repeat(8)}-0000-4000-8000-000000000001', name: null, githubLogin: null, email: null } });
      `], { env: { ...process.env, ODOOOPS_CREDENTIAL_STORE: 'file' } }, (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve()));
    });
    await Promise.all([writer('https://x.example.com'), writer('https://y.example.com'), writer('https://z.example.com')]);
    const file = JSON.parse(readFileSync(join(home, 'credentials.json'), 'utf8'));
    for (const s of ['https://x.example.com', 'https://y.example.com', 'https://z.example.com']) {
      assert.equal(file.servers[s]?.session?.refreshToken, 'r.300', `${s}: ${JSON.stringify(file.servers[s])}`);
    }
    assert.equal((statSync(join(home, 'credentials.json')).mode & 0o777).toString(8), '600');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
