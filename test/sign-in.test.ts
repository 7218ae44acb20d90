// Signing in (issue 15) against the real server: a GitHub token exchanged for an OdooOps session
// (GitHub played by a named test double, test/helpers/github-double.ts), invitations accepted at the
// first sign-in, strangers refused without an account, refresh tokens that rotate and catch a replay,
// sign-out, the verifier's refusals, the per-address limit, and Supabase Auth's accept path reading
// auth.identities (never user_metadata). Also client/session.ts, the session manager the CLI and the
// extension share, against the same server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import * as C from '../contract/index.ts';
import { ApiClient } from '../client/api-client.ts';
import { SessionManager, signInWithGitHub, acceptSupabaseSignIn, type SessionStorage, type StoredSession, retryDelay } from '../client/session.ts';
import { realtimeClient } from '../client/realtime.ts';
import { signAccessToken } from '../server/auth/sessions.ts';
import { call, startControlPlane, type TestControlPlane, type TestUser, eventually } from './helpers/control-plane.ts';
import { startGitHubDouble, type GitHubDouble } from './helpers/github-double.ts';

let gh: GitHubDouble;
let cp: TestControlPlane;
let admin: TestUser;
let projectId: string;
const P = 'team-acme';

before(async () => {
  gh = await startGitHubDouble();
  cp = await startControlPlane({
    worker: false, githubApiUrl: gh.url, githubWebUrl: gh.url, githubClientId: 'Iv1.test-client',
    // This file signs in many times from one address; the limit itself is tested on a server of its own.
    signInRateLimit: { burst: 1000, perMinute: 1000 },
  });
  admin = await cp.user('admin@example.invalid', { instanceAdmin: true });
  assert.equal((await admin.call('POST', '/api/projects', { slug: P, name: 'Acme' })).status, 201);
  projectId = (await cp.pool.query('select id from ops.projects where slug = $1', [P])).rows[0].id;
});
after(async () => {
  await cp?.close();
  await gh?.close();
});

const exchange = (githubToken: string, headers: Record<string, string> = {}) => call(cp.server.url, undefined, 'POST', '/api/auth/github', { githubToken }, headers);
const userRows = async (githubId: number) => (await cp.pool.query('select * from ops.users where github_id = $1', [githubId])).rows;
let nextId = 9100;
function account(login: string, extra: Partial<Parameters<GitHubDouble['addToken']>[1]> = {}) {
  const id = ++nextId;
  const token = `gho_${login}_${id}`;
  gh.addToken(token, { id, login, ...extra });
  return { id, login, token };
}

test('health says how to sign in: GitHub, with the OAuth app client id and GitHub web URL', async () => {
  const h = C.Health.parse((await call(cp.server.url, undefined, 'GET', '/api/health')).body);
  assert.deepEqual(h.auth, { github: { clientId: 'Iv1.test-client', webUrl: gh.url }, supabase: null });
});

test('only tokens of VS Code\'s GitHub sign-in or of the server\'s own app sign in: another app\'s token, or a personal access token, does not', async () => {
  assert.equal((await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'apps-ada', role: 'viewer' })).status, 201);
  const ada = { id: ++nextId, login: 'apps-ada', name: 'Ada' };
  // The GitHub CLI's app (gh auth token), a token some other service received, and a PAT (no client id).
  gh.addToken('gho_ada_gh_cli', ada, '178c6fc778ccc68e1d6a');
  gh.addToken('ghp_ada_pat', ada, null);
  for (const [token, says] of [['gho_ada_gh_cli', /another app \(client id 178c6fc778ccc68e1d6a\)/], ['ghp_ada_pat', /no OAuth app this server knows/]] as const) {
    const r = await exchange(token);
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'github_app_not_allowed');
    assert.match(r.body.error.message, says);
  }
  assert.deepEqual(await userRows(ada.id), [], 'no account was made');
  // The same person through VS Code's sign-in (the default app) and through the server's own app (device flow).
  gh.addToken('gho_ada_vscode', ada);
  assert.equal((await exchange('gho_ada_vscode')).status, 200);
  gh.addToken('gho_ada_device', ada, 'Iv1.test-client');
  assert.equal((await exchange('gho_ada_device')).status, 200);
  // An operator may allow another app.
  const allowing = await startControlPlane({ worker: false, githubApiUrl: gh.url, githubAllowedClientIds: ['178c6fc778ccc68e1d6a'] });
  try {
    const r = await call(allowing.server.url, undefined, 'POST', '/api/auth/github', { githubToken: 'gho_ada_gh_cli' });
    assert.notEqual(r.body?.error?.code, 'github_app_not_allowed', JSON.stringify(r.body));
  } finally {
    await allowing.close();
  }
});

test('an invitation by GitHub login is accepted at the first sign-in; names show in members and /api/me', async () => {
  const invite = await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'Mona-Lisa', role: 'developer' });
  assert.equal(invite.status, 201, JSON.stringify(invite.body));
  const inv = C.Invitation.parse(invite.body);
  assert.equal(inv.invitedBy, admin.id);
  assert.ok(Date.parse(inv.expiresAt) - Date.parse(inv.createdAt) >= 14 * 86_400_000 - 1000, 'valid for 14 days');

  // GitHub's login differs in case from the invitation's: logins are case-insensitive.
  const mona = account('mona-lisa', { name: 'Mona Lisa Octocat', emails: [{ email: 'mona@example.invalid', primary: true, verified: true }] });
  const r = await exchange(mona.token, { 'user-agent': 'odooops-test/1' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const session = C.AuthSession.parse(r.body);
  assert.deepEqual(session.joined, [{ project: P, role: 'developer' }]);
  assert.deepEqual({ ...session.user, id: undefined }, { id: undefined, name: 'Mona Lisa Octocat', githubLogin: 'mona-lisa', email: 'mona@example.invalid' });
  // GitHub was asked with the person's token, for who they are and for their verified email.
  const asked = gh.calls.filter((c) => c.auth === `Bearer ${mona.token}`).map((c) => c.path);
  assert.deepEqual(asked, ['/user', '/user/emails']);

  const members = await admin.call('GET', `/api/projects/${P}/members`);
  const row = (members.body as C.Member[]).find((m) => m.userId === session.user.id);
  assert.deepEqual({ role: row?.role, name: row?.name, githubLogin: row?.githubLogin }, { role: 'developer', name: 'Mona Lisa Octocat', githubLogin: 'mona-lisa' });
  const me = await call(cp.server.url, session.accessToken, 'GET', '/api/me');
  assert.equal(me.status, 200);
  assert.deepEqual({ userId: me.body.userId, name: me.body.name, githubLogin: me.body.githubLogin, email: me.body.email },
    { userId: session.user.id, name: 'Mona Lisa Octocat', githubLogin: 'mona-lisa', email: 'mona@example.invalid' });
  // The new member sees the project with their role, and the admin's invitation is marked accepted.
  const projects = await call(cp.server.url, session.accessToken, 'GET', '/api/projects');
  assert.deepEqual(projects.body.map((p: C.Project) => [p.slug, p.role]), [[P, 'developer']]);
  const invitations = (await admin.call('GET', `/api/projects/${P}/invitations`)).body as C.Invitation[];
  const accepted = invitations.find((i) => i.id === inv.id)!;
  assert.equal(accepted.acceptedBy, session.user.id);
  assert.ok(accepted.acceptedAt);
  const sess = (await cp.pool.query('select user_agent, generation from ops.sessions where user_id = $1', [session.user.id])).rows;
  assert.deepEqual(sess, [{ user_agent: 'odooops-test/1', generation: 1 }]);
  const audit = (await cp.pool.query(`select action from ops.audit_log where actor = $1 order by id`, [session.user.id])).rows.map((a) => a.action);
  assert.ok(audit.includes('sessions.sign_in'), audit.join(', '));

  // Signing in again: the same person (known by GitHub id), no second membership, nothing joined.
  const again = C.AuthSession.parse((await exchange(mona.token)).body);
  assert.equal(again.user.id, session.user.id);
  assert.deepEqual(again.joined, []);
});

test('a stranger (no invitation, no membership) gets a 403 that says what to do, and no account', async () => {
  const eve = account('eve-stranger', { emails: [{ email: 'eve@example.invalid', primary: true, verified: true }] });
  const r = await exchange(eve.token);
  assert.equal(r.status, 403);
  assert.equal(r.body.error.code, 'no_invitation');
  assert.match(r.body.error.message, /no invitation for eve-stranger on this server: ask a project admin to run `odooops member invite PROJECT --github eve-stranger --role ROLE`/);
  assert.deepEqual(await userRows(eve.id), []);
  const refusals = await cp.pool.query(`select details from ops.audit_log where action = 'sign_in.refused' and target = $1`, [`github:${eve.id}`]);
  assert.equal(refusals.rows[0]?.details.github_login, 'eve-stranger');
});

test('an invitation for another login, or for an email GitHub has not verified, is not accepted', async () => {
  assert.equal((await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'octo-real', role: 'admin' })).status, 201);
  assert.equal((await admin.call('POST', `/api/projects/${P}/invitations`, { email: 'boss@acme.example', role: 'admin' })).status, 201);
  // Someone whose login merely contains the invited one, with the invited email unverified on GitHub.
  const mallory = account('octo-real-x', { emails: [{ email: 'boss@acme.example', primary: true, verified: false }] });
  const r = await exchange(mallory.token);
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.deepEqual(await userRows(mallory.id), []);
  // A verified email that is not the primary one is not taken either (GitHub's primary verified only).
  const other = account('someone-else', { emails: [{ email: 'x@example.invalid', primary: true, verified: true }, { email: 'boss@acme.example', primary: false, verified: true }] });
  assert.equal((await exchange(other.token)).status, 403);
  // The rightful person, by verified primary email, joins.
  const boss = account('the-boss', { emails: [{ email: 'Boss@Acme.example', primary: true, verified: true }] });
  const ok = C.AuthSession.parse((await exchange(boss.token)).body);
  assert.deepEqual(ok.joined, [{ project: P, role: 'admin' }]);
  // octo-real's invitation is still pending.
  const pending = ((await admin.call('GET', `/api/projects/${P}/invitations`)).body as C.Invitation[]).filter((i) => !i.acceptedAt).map((i) => i.githubLogin);
  assert.ok(pending.includes('octo-real'));
});

test('only project admins invite, list and withdraw invitations; inviting again replaces; members cannot be invited', async () => {
  const dev = await cp.user();
  await cp.pool.query(`insert into ops.project_members (project_id, user_id, role) values ($1, $2, 'developer')`, [projectId, dev.id]);
  const refused = await dev.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'devs-friend', role: 'admin' });
  assert.equal(refused.status, 403);
  assert.match(refused.body.error.message, /only admins of "team-acme" can invite people; you are developer/);
  assert.equal((await dev.call('GET', `/api/projects/${P}/invitations`)).status, 403);
  // Not through SQL either: RLS lets only admins insert or read invitations.
  await assert.rejects(cp.sql(dev, (c) => c.query(`insert into ops.invitations (project_id, github_login, role) values ($1, 'devs-friend', 'admin')`, [projectId])), /row-level security/);
  assert.equal((await cp.sql(dev, (c) => c.query('select * from ops.invitations'))).rowCount, 0);
  const outsider = await cp.user();
  assert.equal((await outsider.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'x', role: 'viewer' })).status, 404);

  const first = C.Invitation.parse((await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'twice', role: 'viewer' })).body);
  const second = await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'TWICE', role: 'tester' });
  assert.equal(second.status, 200, 'replaced');
  const list = ((await admin.call('GET', `/api/projects/${P}/invitations`)).body as C.Invitation[]).filter((i) => i.githubLogin?.toLowerCase() === 'twice');
  assert.deepEqual(list.map((i) => i.role), ['tester']);
  assert.notEqual(list[0]!.id, first.id);
  const del = await admin.call('DELETE', `/api/projects/${P}/invitations/${list[0]!.id}`);
  assert.equal(del.status, 204);
  assert.equal((await admin.call('DELETE', `/api/projects/${P}/invitations/${list[0]!.id}`)).status, 404);
  const audit = (await admin.call('GET', `/api/projects/${P}/audit?limit=50`)).body as C.AuditEntry[];
  assert.ok(audit.some((a) => a.action === 'invitations.delete' && a.target === `invitations:${list[0]!.id}`));
  assert.ok(audit.some((a) => a.action === 'invitations.insert' && a.actor === admin.id));

  // Neither login nor email may be both; a malformed login is refused at the edge.
  assert.equal((await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'a', email: 'a@b.c', role: 'viewer' })).status, 400);
  assert.equal((await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: '-bad--login', role: 'viewer' })).status, 400);
  // Someone who is a member already.
  const member = await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'MONA-LISA', role: 'viewer' });
  assert.equal(member.status, 409);
  assert.match(member.body.error.message, /MONA-LISA is already a member of team-acme/);
});

test('people see the names of those they share a project with (and their own), never their emails', async () => {
  const mona = (await cp.pool.query(`select id from ops.users where github_login = 'mona-lisa'`)).rows[0].id as string;
  const coMember = await cp.user();
  await cp.pool.query(`insert into ops.project_members (project_id, user_id, role) values ($1, $2, 'viewer')`, [projectId, coMember.id]);
  const seen = await cp.sql(coMember, (c) => c.query('select id, name, github_login from ops.users where id = $1', [mona]));
  assert.deepEqual(seen.rows, [{ id: mona, name: 'Mona Lisa Octocat', github_login: 'mona-lisa' }]);
  await assert.rejects(cp.sql(coMember, (c) => c.query('select email from ops.users')), /permission denied/);
  const outsider = await cp.user();
  assert.equal((await cp.sql(outsider, (c) => c.query('select id from ops.users'))).rowCount, 0);
  const self = await cp.sql({ id: mona, token: '', call: async () => ({ status: 0, body: null }) }, (c) => c.query('select id from ops.users'));
  assert.ok(self.rows.some((r) => r.id === mona));
  // Sessions: each person sees their own only.
  assert.equal((await cp.sql(coMember, (c) => c.query('select id from ops.sessions'))).rowCount, 0);
  assert.ok((await cp.sql({ id: mona, token: '', call: async () => ({ status: 0, body: null }) }, (c) => c.query('select id from ops.sessions'))).rowCount! >= 1);
});

test('a GitHub token GitHub refuses is a 401; GitHub failing is a 502 that says so; neither makes an account', async () => {
  const bad = await exchange('gho_not_a_real_token');
  assert.equal(bad.status, 401);
  assert.equal(bad.body.error.code, 'github_token_refused');
  const carol = account('carol-down');
  await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'carol-down', role: 'viewer' });
  gh.failUser = 503;
  try {
    const down = await exchange(carol.token);
    assert.equal(down.status, 502);
    assert.equal(down.body.error.code, 'github_unavailable');
    assert.match(down.body.error.message, /could not ask GitHub who this token belongs to: GitHub answered 503/);
  } finally {
    gh.failUser = undefined;
  }
  assert.deepEqual(await userRows(carol.id), []);
  // The invitation is still there for when GitHub is back.
  assert.equal((await exchange(carol.token)).status, 200);
});

/** A signed-in member, straight through the API. */
async function signedIn(login: string): Promise<C.AuthSession> {
  const who = account(login);
  await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: login, role: 'viewer' });
  const r = await exchange(who.token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return C.AuthSession.parse(r.body);
}
const refresh = (refreshToken: string) => call(cp.server.url, undefined, 'POST', '/api/auth/refresh', { refreshToken });

test('someone signed in who is invited to another project joins it at their next refresh, not only at a new sign-in', async () => {
  const s = await signedIn('busy-bea');
  const other = await admin.call('POST', '/api/projects', { slug: 'second-acme', name: 'Second' });
  assert.equal(other.status, 201, JSON.stringify(other.body));
  assert.equal((await admin.call('POST', '/api/projects/second-acme/invitations', { githubLogin: 'Busy-Bea', role: 'developer' })).status, 201);
  const before = await call(cp.server.url, s.accessToken, 'GET', '/api/projects');
  assert.deepEqual(before.body.map((p: C.Project) => p.slug), [P]);
  const r = await refresh(s.refreshToken);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const renewed = C.AuthSession.parse(r.body);
  assert.deepEqual(renewed.joined, [{ project: 'second-acme', role: 'developer' }]);
  const after = await call(cp.server.url, renewed.accessToken, 'GET', '/api/projects');
  assert.deepEqual(after.body.map((p: C.Project) => p.slug).sort(), [P, 'second-acme'].sort());
  // The next refresh joins nothing new.
  assert.deepEqual(C.AuthSession.parse((await refresh(renewed.refreshToken)).body).joined, []);
});

test('an invitation counts only while whoever made it is still an admin of the project', async () => {
  // A second admin invites an account, then is demoted before the invitee signs in.
  const deputy = await cp.user('deputy@example.invalid');
  await cp.pool.query(`insert into ops.project_members (project_id, user_id, role) values ($1, $2, 'admin')`, [projectId, deputy.id]);
  assert.equal((await deputy.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'deputys-alt', role: 'admin' })).status, 201);
  assert.equal((await admin.call('PATCH', `/api/projects/${P}/members/${deputy.id}`, { role: 'viewer' })).status, 200);
  const alt = account('deputys-alt');
  const r = await exchange(alt.token);
  assert.equal(r.status, 403, 'the demoted admin\'s invitation lets nobody in');
  assert.equal(r.body.error.code, 'no_invitation');
  assert.deepEqual(await userRows(alt.id), []);
  // The same invitation from an admin who still is one works (it replaces the pending one: 200).
  assert.equal((await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: 'deputys-alt', role: 'viewer' })).status, 200);
  const ok = await exchange(alt.token);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(C.AuthSession.parse(ok.body).joined, [{ project: P, role: 'viewer' }]);
});

test('refresh rotates; a replayed older refresh token revokes the session (audited) and its tokens stop working', async () => {
  const s1 = await signedIn('rotating-rita');
  const r2 = await refresh(s1.refreshToken);
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  const s2 = C.AuthSession.parse(r2.body);
  assert.notEqual(s2.refreshToken, s1.refreshToken);
  assert.equal(s2.user.id, s1.user.id);
  // Two processes refreshing with the same token at once: the second, within 10 s, gets the current pair.
  const twin = C.AuthSession.parse((await refresh(s1.refreshToken)).body);
  assert.equal(twin.refreshToken, s2.refreshToken);
  const s3 = C.AuthSession.parse((await refresh(s2.refreshToken)).body);
  assert.equal((await call(cp.server.url, s3.accessToken, 'GET', '/api/me')).status, 200);

  // Generation 1 again, two rotations later: a copy someone kept. The whole session ends.
  const replay = await refresh(s1.refreshToken);
  assert.equal(replay.status, 401);
  assert.equal(replay.body.error.code, 'session_ended');
  assert.match(replay.body.error.message, /already used: the session is revoked/);
  const me = await call(cp.server.url, s3.accessToken, 'GET', '/api/me');
  assert.equal(me.status, 401);
  assert.equal(me.body.error.code, 'session_ended');
  assert.equal((await refresh(s3.refreshToken)).status, 401, 'the current refresh token is revoked too');
  const row = (await cp.pool.query(`select revoked_reason from ops.sessions where user_id = $1`, [s1.user.id])).rows[0];
  assert.equal(row.revoked_reason, 'replay');
  const audit = await cp.pool.query(`select actor, details from ops.audit_log where action = 'sessions.replay' and actor = $1`, [s1.user.id]);
  assert.deepEqual(audit.rows[0]?.details, { presented_generation: 1, current_generation: 3 });
});

test('the previous refresh token after the 10 s grace is a replay too', async () => {
  const s1 = await signedIn('late-larry');
  const s2 = C.AuthSession.parse((await refresh(s1.refreshToken)).body);
  // As if 11 s had passed since the rotation.
  await cp.pool.query(`update ops.sessions set rotated_at = now() - interval '11 seconds' where user_id = $1`, [s1.user.id]);
  assert.equal((await refresh(s1.refreshToken)).status, 401);
  assert.equal((await call(cp.server.url, s2.accessToken, 'GET', '/api/me')).status, 401);
});

test('a forged or altered refresh token is refused without touching the session', async () => {
  const s = await signedIn('forging-fred');
  const [sid, gen, mac] = s.refreshToken.split('.');
  for (const t of [`${sid}.${Number(gen) + 1}.${mac}`, `${sid}.${gen}.${'A'.repeat(43)}`, `${randomUUID()}.1.${mac}`, 'nonsense']) {
    const r = await refresh(t);
    assert.equal(r.status, 401, t);
    assert.equal(r.body.error.code, 'invalid_refresh_token');
  }
  assert.equal((await refresh(s.refreshToken)).status, 200, 'the real one still works');
});

test('logout ends the session: the access token is refused and the refresh token too', async () => {
  const s = await signedIn('leaving-lena');
  const out = await call(cp.server.url, s.accessToken, 'POST', '/api/auth/logout');
  assert.equal(out.status, 200);
  assert.deepEqual(out.body, { signedOut: true });
  const me = await call(cp.server.url, s.accessToken, 'GET', '/api/me');
  assert.equal(me.status, 401);
  assert.equal(me.body.error.code, 'session_ended');
  const r = await refresh(s.refreshToken);
  assert.equal(r.status, 401);
  assert.match(r.body.error.message, /signed out/);
  // Another user's session cannot be ended by knowing its id: end_session is the owner's.
  const victim = await signedIn('victim-vera');
  const sid = victim.refreshToken.split('.')[0];
  const other = await signedIn('other-otto');
  const ended = await cp.pool.connect().then(async (c) => {
    try {
      await c.query('begin');
      await c.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ sub: other.user.id, role: 'authenticated' })]);
      return (await c.query('select ops.end_session($1) as ok', [sid])).rows[0].ok;
    } finally {
      await c.query('rollback');
      c.release();
    }
  });
  assert.equal(ended, false);
  assert.equal((await call(cp.server.url, victim.accessToken, 'GET', '/api/me')).status, 200);
  // A token that is not a session (the operator's): nothing to sign out of.
  assert.equal((await admin.call('POST', '/api/auth/logout')).status, 400);
  assert.equal((await call(cp.server.url, undefined, 'POST', '/api/auth/logout')).status, 401);
});

test('an expired access token is a 401 token_expired; a token for a session that is not there, session_ended', async () => {
  const s = await signedIn('expiring-ed');
  const sid = s.refreshToken.split('.')[0]!;
  // (Expiry counts in whole seconds: a 1 s token signed late in its second lives a few ms, less than a
  // loaded machine takes to ask with it. 3 s, and then a wait past its expiry.)
  const short = await signAccessToken(cp.server.secret, { sub: s.user.id, sid, email: null }, 3);
  assert.equal((await call(cp.server.url, short.token, 'GET', '/api/me')).status, 200);
  await new Promise((r) => setTimeout(r, short.expiresAt.getTime() - Date.now() + 1100));
  const expired = await call(cp.server.url, short.token, 'GET', '/api/me');
  assert.equal(expired.status, 401);
  assert.equal(expired.body.error.code, 'token_expired');
  const ghost = await signAccessToken(cp.server.secret, { sub: s.user.id, sid: randomUUID(), email: null }, 60);
  assert.equal((await call(cp.server.url, ghost.token, 'GET', '/api/me')).body.error.code, 'session_ended');
  // Someone else's session id under my subject: refused (the session is checked with its user).
  const other = await signedIn('other-olga');
  const swapped = await signAccessToken(cp.server.secret, { sub: other.user.id, sid, email: null }, 60);
  assert.equal((await call(cp.server.url, swapped.token, 'GET', '/api/me')).status, 401);
});

test('sign-ins are limited per client address before GitHub is asked', async () => {
  const limited = await startControlPlane({ worker: false, githubApiUrl: gh.url, signInRateLimit: { burst: 2, perMinute: 1 } });
  try {
    const before = gh.calls.length;
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await call(limited.server.url, undefined, 'POST', '/api/auth/github', { githubToken: `gho_flood_${i}` });
      codes.push(r.status);
      if (r.status === 429) assert.match(r.body.error.message, /too many sign-in attempts from this address: try again in 60 s/);
    }
    assert.deepEqual(codes, [401, 401, 429, 429]);
    assert.equal(gh.calls.length - before, 2, 'GitHub was asked only for the two allowed attempts');
    const res = await fetch(`${limited.server.url}/api/auth/github`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"githubToken":"x"}' });
    assert.equal(res.headers.get('retry-after'), '60');
  } finally {
    await limited.close();
  }
});

test('the Realtime gateway verifies session tokens the same way: a signed-out session cannot join', async () => {
  const s = await signedIn('realtime-rex');
  const join = async (token: string) => {
    const { sb } = await realtimeClient(cp.server.url, 'odooops-local', { target: { token } });
    try {
      return await new Promise<{ status: string; error?: string }>((resolve) => {
        sb.channel(`project:${projectId}`, { config: { private: true } }).subscribe((status, err) => {
          if (status !== 'CLOSED') resolve({ status, error: err?.message });
        });
      });
    } finally {
      await sb.removeAllChannels();
      sb.realtime.disconnect();
    }
  };
  assert.equal((await join(s.accessToken)).status, 'SUBSCRIBED');
  // A channel joined before the sign-out ends with it, not when its token expires (in an hour).
  const { sb: live } = await realtimeClient(cp.server.url, 'odooops-local', { target: { token: s.accessToken } });
  const events: string[] = [];
  let ended!: (e: string) => void;
  const endedWith = new Promise<string>((r) => (ended = r));
  let systemMessage = '';
  live.channel(`project:${projectId}`, { config: { private: true } })
    .on('system', {}, (m) => (systemMessage = String(m.message ?? m)))
    .subscribe((status, err) => {
      events.push(status);
      if (status !== 'SUBSCRIBED') ended(`${status}: ${err?.message ?? systemMessage}`);
    });
  await eventually('the live channel joined', async () => events.includes('SUBSCRIBED'));
  const t0 = Date.now();
  assert.equal((await call(cp.server.url, s.accessToken, 'POST', '/api/auth/logout')).status, 200);
  try {
    const why = await Promise.race([endedWith, new Promise<string>((r) => setTimeout(() => r('still open after 10 s'), 10_000))]);
    assert.match(why, /^CLOSED: .*this session has ended/, `the open channel ends with the session (${Date.now() - t0} ms)`);
  } finally {
    await live.removeAllChannels();
    live.realtime.disconnect();
  }
  const refused = await join(s.accessToken);
  assert.equal(refused.status, 'CHANNEL_ERROR');
  assert.match(refused.error ?? '', /this session has ended/);
});

// client/session.ts -------------------------------------------------------------------------------
class MemoryStorage implements SessionStorage {
  value: StoredSession | undefined;
  saves = 0;
  async load() {
    return this.value && { ...this.value };
  }
  async save(s: StoredSession) {
    this.saves++;
    this.value = { ...s };
  }
  async clear() {
    this.value = undefined;
  }
}

test('SessionManager: a token about to expire is refreshed first, once for concurrent callers, and handed to the API client', async () => {
  const login = 'session-sam';
  const who = account(login);
  await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: login, role: 'viewer' });
  const signed = await signInWithGitHub(cp.server.url, who.token);
  const storage = new MemoryStorage();
  const sm = new SessionManager({ url: cp.server.url, storage });
  await sm.signIn(signed);
  const api = new ApiClient({ url: cp.server.url, token: 'none-yet' });
  const seen: string[] = [];
  api.onToken((t) => seen.push(t));
  sm.attach(api);
  assert.equal(api.target.token, signed.accessToken);
  assert.equal((await api.get('/api/me', C.Me)).userId, signed.user.id);
  assert.equal(storage.saves, 1, 'no refresh while the token is fresh');

  // Pretend the token is about to expire: the next call refreshes (one refresh for three callers).
  storage.value = { ...storage.value!, expiresAt: new Date(Date.now() + 5_000).toISOString() };
  await sm.load();
  const refreshesBefore = gh.calls.length; // GitHub is not involved in a refresh
  const tokens = await Promise.all([sm.token(), sm.token(), sm.token()]);
  assert.equal(new Set(tokens).size, 1);
  assert.notEqual(tokens[0], signed.accessToken);
  assert.equal(storage.saves, 2, 'one refresh, saved once');
  assert.equal(gh.calls.length, refreshesBefore);
  assert.equal(seen.at(-1), tokens[0], 'api.setToken got the new token');
  assert.notEqual(storage.value!.refreshToken, signed.refreshToken, 'the rotated refresh token was stored');
});

test('SessionManager: a 401 token_expired is retried once after a refresh; an ended session clears the storage', async () => {
  const login = 'retry-rosa';
  const who = account(login);
  await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: login, role: 'viewer' });
  const signed = await signInWithGitHub(cp.server.url, who.token);
  const sid = signed.refreshToken.split('.')[0]!;
  // A token that already expired, stored as if it had an hour left (this clock and the server's disagree).
  const stale = await signAccessToken(cp.server.secret, { sub: signed.user.id, sid, email: null }, 1);
  await new Promise((r) => setTimeout(r, 2100));
  const storage = new MemoryStorage();
  storage.value = { ...signed, accessToken: stale.token, expiresAt: new Date(Date.now() + 3_600_000).toISOString() };
  const sm = new SessionManager({ url: cp.server.url, storage });
  await sm.load();
  const api = new ApiClient({ url: cp.server.url, token: '' });
  sm.attach(api);
  const me = await api.get('/api/me', C.Me);
  assert.equal(me.userId, signed.user.id);
  assert.notEqual(api.target.token, stale.token);

  // Sign-out revokes on the server and forgets here.
  const kept = api.target.token;
  assert.deepEqual(await sm.signOut(), { revoked: true });
  assert.equal(storage.value, undefined);
  assert.equal((await call(cp.server.url, kept, 'GET', '/api/me')).body.error.code, 'session_ended');
  await assert.rejects(sm.token(), (err: Error & { code?: string }) => err.code === 'session_ended');
});

test('SessionManager: two processes sharing one storage refresh at once and both stay signed in', async () => {
  const login = 'twin-tara';
  const who = account(login);
  await admin.call('POST', `/api/projects/${P}/invitations`, { githubLogin: login, role: 'viewer' });
  const signed = await signInWithGitHub(cp.server.url, who.token);
  // Two storages holding the same session, as two CLI processes that each read the file before either wrote.
  const a = new MemoryStorage();
  const b = new MemoryStorage();
  a.value = { ...signed };
  b.value = { ...signed };
  const [sa, sb] = [new SessionManager({ url: cp.server.url, storage: a }), new SessionManager({ url: cp.server.url, storage: b })];
  await sa.load();
  await sb.load();
  const [ra, rb] = await Promise.all([sa.refresh(), sb.refresh()]);
  assert.equal(ra.refreshToken, rb.refreshToken, 'the later one got the current pair');
  for (const s of [ra, rb]) assert.equal((await call(cp.server.url, s.accessToken, 'GET', '/api/me')).status, 200);
  const row = (await cp.pool.query('select generation, revoked_at from ops.sessions where user_id = $1', [signed.user.id])).rows[0];
  assert.deepEqual(row, { generation: 2, revoked_at: null });
});

test('SessionManager: the background refresh renews before expiry (short TTL) and stops when the session ends', async () => {
  const short = await startControlPlane({ worker: false, githubApiUrl: gh.url, sessionTtlSeconds: 3 });
  try {
    const who = account('auto-ava');
    const owner = await short.user(undefined, { instanceAdmin: true });
    await owner.call('POST', '/api/projects', { slug: 'short-ttl', name: 'S' });
    await owner.call('POST', '/api/projects/short-ttl/invitations', { githubLogin: 'auto-ava', role: 'viewer' });
    const signed = await signInWithGitHub(short.server.url, who.token);
    assert.ok(Date.parse(signed.expiresAt) - Date.now() <= 3_000);
    const storage = new MemoryStorage();
    const changes: (string | undefined)[] = [];
    const sm = new SessionManager({ url: short.server.url, storage });
    sm.onChange((s) => changes.push(s?.accessToken));
    await sm.signIn(signed);
    const stop = sm.startAutoRefresh();
    // 3 s tokens refreshed at 80 %: in 7 s, at least two refreshes, and the held token always works.
    for (let i = 0; i < 7; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await call(short.server.url, sm.session!.accessToken, 'GET', '/api/me')).status, 200, `second ${i + 1}`);
    }
    assert.ok(changes.length >= 3, `${changes.length} changes`);
    // Revoked elsewhere (a sign-out from another machine): the next background refresh finds it ended.
    await call(short.server.url, sm.session!.accessToken, 'POST', '/api/auth/logout');
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(sm.session, undefined);
    assert.equal(changes.at(-1), undefined);
    assert.equal(storage.value, undefined);
    stop();
  } finally {
    await short.close();
  }
});

// Supabase Auth ----------------------------------------------------------------------------------
test('Supabase control plane: /api/auth/accept takes the GitHub identity from auth.identities, never from user_metadata', async () => {
  const secret = 'supabase-test-jwt-secret-with-at-least-32-characters';
  const sb = await startControlPlane({ worker: false, jwtSecret: secret, realtimeUrl: 'http://127.0.0.1:9', realtimeKey: 'anon-key-test', githubApiUrl: gh.url });
  try {
    const h = C.Health.parse((await call(sb.server.url, undefined, 'GET', '/api/health')).body);
    assert.deepEqual(h.auth, { github: null, supabase: { url: 'http://127.0.0.1:9', anonKey: 'anon-key-test' } });
    assert.equal((await call(sb.server.url, undefined, 'POST', '/api/auth/github', { githubToken: 'x' })).body.error.code, 'use_supabase_auth');

    // A stand-in for GoTrue's writes: auth.users with its user-editable metadata, auth.identities as
    // GoTrue fills it from GitHub's answers.
    await sb.pool.query(`
      create table auth.users (id uuid primary key, email text, raw_user_meta_data jsonb);
      create table auth.identities (
        provider_id text not null, user_id uuid not null references auth.users (id), identity_data jsonb not null,
        provider text not null, last_sign_in_at timestamptz, created_at timestamptz default now(), updated_at timestamptz,
        id uuid primary key default gen_random_uuid(), unique (provider_id, provider))`);
    const owner = await sb.user(undefined, { instanceAdmin: true });
    await owner.call('POST', '/api/projects', { slug: 'sb-acme', name: 'S' });
    await owner.call('POST', '/api/projects/sb-acme/invitations', { githubLogin: 'victim-admin', role: 'admin' });
    await owner.call('POST', '/api/projects/sb-acme/invitations', { githubLogin: 'real-attacker', role: 'viewer' });

    const jwt = (sub: string) => new SignJWT({ role: 'authenticated', aud: 'authenticated', session_id: randomUUID() })
      .setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(secret));
    // The attacker edited their user_metadata to claim the invited admin's login.
    const attacker = randomUUID();
    await sb.pool.query(`insert into auth.users values ($1, 'a@example.invalid', '{"user_name":"victim-admin","provider_id":"1"}')`, [attacker]);
    await sb.pool.query(`insert into auth.identities (provider_id, user_id, identity_data, provider) values
      ('777', $1, '{"sub":"777","user_name":"real-attacker","full_name":"Real Attacker","email":"a@example.invalid","email_verified":true}', 'github')`, [attacker]);
    const r = await acceptSupabaseSignIn(sb.server.url, await jwt(attacker));
    assert.deepEqual(r.joined, [{ project: 'sb-acme', role: 'viewer' }], 'joined as who GitHub says, not as the metadata claims');
    assert.deepEqual(r.user, { id: attacker, name: 'Real Attacker', githubLogin: 'real-attacker', email: 'a@example.invalid' });
    const pending = ((await owner.call('GET', '/api/projects/sb-acme/invitations')).body as C.Invitation[]).filter((i) => !i.acceptedAt).map((i) => i.githubLogin);
    assert.deepEqual(pending, ['victim-admin']);
    const members = (await owner.call('GET', '/api/projects/sb-acme/members')).body as C.Member[];
    assert.deepEqual(members.find((m) => m.userId === attacker)?.name, 'Real Attacker');

    // A Supabase user without a GitHub identity (an email sign-up), and a GitHub user nobody invited.
    const emailOnly = randomUUID();
    await sb.pool.query(`insert into auth.users values ($1, 'e@example.invalid', '{"user_name":"victim-admin"}')`, [emailOnly]);
    const noGithub = await call(sb.server.url, await jwt(emailOnly), 'POST', '/api/auth/accept');
    assert.equal(noGithub.status, 403);
    assert.equal(noGithub.body.error.code, 'no_github_identity');
    const stranger = randomUUID();
    await sb.pool.query(`insert into auth.users values ($1, 's@example.invalid', '{}')`, [stranger]);
    await sb.pool.query(`insert into auth.identities (provider_id, user_id, identity_data, provider) values ('778', $1, '{"user_name":"nobody-here"}', 'github')`, [stranger]);
    const refused = await call(sb.server.url, await jwt(stranger), 'POST', '/api/auth/accept');
    assert.equal(refused.status, 403);
    assert.match(refused.body.error.message, /no invitation for nobody-here/);
    assert.equal((await sb.pool.query('select count(*)::int n from ops.users where id = $1', [stranger])).rows[0].n, 0);
    // A forged Supabase token is refused before anything is read.
    const forged = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setSubject(attacker).setExpirationTime('1h')
      .sign(new TextEncoder().encode('not-the-secret-not-the-secret-not-the-secret'));
    assert.equal((await call(sb.server.url, forged, 'POST', '/api/auth/accept')).status, 401);
  } finally {
    await sb.close();
  }
});

test('SessionManager: failed background refreshes back off (doubling to 5 minutes, a minute after a 429), not once a second', async () => {
  const unavailable = Object.assign(new Error('HTTP 503'), { code: 'server_error' });
  const limited = Object.assign(new Error('too many'), { code: 'rate_limited' });
  // An expired token (nothing left): 1, 2, 4 … s, ±20 %, capped at 5 minutes.
  const delays = Array.from({ length: 12 }, (_, i) => retryDelay(i + 1, unavailable, -5_000));
  for (const [i, d] of delays.entries()) {
    const base = Math.min(300_000, 1_000 * 2 ** i);
    assert.ok(d >= Math.max(1_000, base * 0.8) && d <= base * 1.2, `attempt ${i + 1}: ${d} ms`);
  }
  assert.ok(retryDelay(1, limited, -5_000) >= 60_000, 'a 429 waits at least a minute');
  assert.ok(retryDelay(5, unavailable, 10_000) <= 5_000, 'with 10 s left, it tries again before half of it is gone');

  // Against a server that keeps answering 503: attempts at about 0, 1 and 3 s, not every second.
  const storage = new MemoryStorage();
  storage.value = { accessToken: 'expired', refreshToken: 'r.1.x', expiresAt: new Date(Date.now() - 60_000).toISOString(), user: { id: randomUUID(), name: null, githubLogin: null, email: null } };
  let attempts = 0;
  const sm = new SessionManager({
    url: 'http://127.0.0.1:9', storage, onRefreshError: () => {},
    fetch: (async () => (attempts++, new Response(JSON.stringify({ error: { code: 'unavailable', message: 'down' } }), { status: 503 }))) as typeof fetch,
  });
  await sm.token().catch(() => {});
  attempts = 0;
  const stop = sm.startAutoRefresh();
  await new Promise((r) => setTimeout(r, 4_000));
  stop();
  assert.ok(attempts >= 2 && attempts <= 3, `${attempts} attempts in 4 s`);
});

test('signing in sends the GitHub token only over https, or to this machine', async () => {
  let sent = 0;
  const counting = (async () => (sent++, new Response('{}', { status: 500 }))) as typeof fetch;
  await assert.rejects(signInWithGitHub('http://ops.example.com', 'gho_secret', counting), /is not https/);
  assert.equal(sent, 0, 'nothing was sent');
  await assert.rejects(signInWithGitHub('http://127.0.0.1:9', 'gho_secret', counting), /500|not as an OdooOps server|HTTP/);
  assert.equal(sent, 1, 'loopback is fine');
});
