// The extension's sign-in to a Supabase control plane (extension/src/supabaseSignIn.ts): supabase-js
// auth with PKCE against a stand-in for Supabase Auth (test/helpers/gotrue-double.ts: GoTrue cannot run
// here), a real OdooOps server in Supabase mode (its --jwt-secret is the project's) taking the person in
// with POST /api/auth/accept, and the session's tokens handed to the API client as supabase-js renews
// them. The browser is played by fetch (a redirect not followed: the URI handler gets its Location);
// the extension-host test runs the same flow through a real browser and VS Code's URI handler.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from '../contract/index.ts';
import { ApiClient } from '../client/api-client.ts';
import { supabaseStorage, type Secrets } from '../extension/src/credentials.ts';
import { SupabaseSignIn } from '../extension/src/supabaseSignIn.ts';
import { startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';
import { startGoTrueDouble, type GoTrueDouble } from './helpers/gotrue-double.ts';

const JWT_SECRET = 'supabase-test-jwt-secret-with-at-least-32-characters';
const ANON = 'anon-key-of-the-test-project';
const REDIRECT = 'vscode://odooops.odooops/auth';
const OCTOCAT = { id: 583231, login: 'octocat', name: 'The Octocat', email: 'octocat@example.invalid' };
const MALLORY = { id: 666, login: 'mallory', name: 'Mallory', email: 'mallory@example.invalid' };

let cp: TestControlPlane;
let gotrue: GoTrueDouble;
let owner: TestUser;

/** A SecretStorage stand-in: a map (what is stored, and under which keys, is what the tests check). */
function secrets(): Secrets & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, get: async (k) => map.get(k), store: async (k, v) => void map.set(k, v), delete: async (k) => void map.delete(k) };
}
/** The browser: opens Supabase's authorize URL and comes back with where it was sent. */
async function browse(url: string): Promise<URL> {
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 302, await res.text());
  return new URL(res.headers.get('location')!);
}
const client = (store = secrets()) => ({ store, sb: new SupabaseSignIn(cp.server.url, { url: gotrue.url, anonKey: ANON }, supabaseStorage(store, cp.server.url)) });

before(async () => {
  cp = await startControlPlane({ worker: false, jwtSecret: JWT_SECRET, realtimeKey: ANON, realtimeUrl: 'http://127.0.0.1:9' });
  gotrue = await startGoTrueDouble({ pool: cp.pool, jwtSecret: JWT_SECRET, anonKey: ANON, realtimeUpstream: cp.server.url });
  owner = await cp.user('owner@example.invalid', { instanceAdmin: true });
  assert.equal((await owner.call('POST', '/api/projects', { slug: 'sb-acme', name: 'Acme on Supabase' })).status, 201);
  assert.equal((await owner.call('POST', '/api/projects/sb-acme/invitations', { githubLogin: 'octocat', role: 'developer' })).status, 201);
});
after(async () => {
  await gotrue?.close();
  await cp?.close();
});

test('PKCE: the code comes back bound to the challenge, is exchanged with the verifier kept in SecretStorage, and the server takes the invitee in', async () => {
  const { store, sb } = client();
  try {
    gotrue.signInAs(OCTOCAT);
    const authorize = new URL(await sb.authorizeUrl(REDIRECT));
    assert.equal(authorize.origin + authorize.pathname, `${gotrue.url}/auth/v1/authorize`);
    assert.equal(authorize.searchParams.get('provider'), 'github');
    assert.equal(authorize.searchParams.get('code_challenge_method'), 's256');
    assert.match(authorize.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(authorize.searchParams.get('redirect_to'), REDIRECT);
    // The verifier waits in SecretStorage, under this server's prefix only.
    assert.ok([...store.map.keys()].some((k) => k.endsWith('-code-verifier')), [...store.map.keys()].join(', '));
    assert.ok([...store.map.keys()].every((k) => k.startsWith(`odooops.supabase:${cp.server.url}:`)));

    const back = await browse(authorize.toString());
    assert.equal(`${back.protocol}//${back.host}${back.pathname}`, REDIRECT);
    const session = await sb.complete(back);
    assert.equal(session.user.identities?.[0]?.identity_data?.user_name, 'octocat');
    const accepted = await sb.accept();
    assert.deepEqual(accepted.joined, [{ project: 'sb-acme', role: 'developer' }]);
    assert.equal(accepted.user.name, 'The Octocat');

    const api = new ApiClient({ url: cp.server.url, token: '' });
    sb.attach(api);
    assert.deepEqual((await api.get('/api/projects', C.Project.array())).map((p) => [p.slug, p.role]), [['sb-acme', 'developer']]);
    assert.equal((await api.get('/api/me', C.Me)).githubLogin, 'octocat');
    // The session is kept for the next start of VS Code: a new client on the same storage has it.
    const again = new SupabaseSignIn(cp.server.url, { url: gotrue.url, anonKey: ANON }, supabaseStorage(store, cp.server.url));
    try {
      assert.equal((await again.load())?.user.id, session.user.id);
    } finally {
      again.dispose();
    }
  } finally {
    sb.dispose();
  }
});

test('a code sent to the URI handler by someone else (their own sign-in) is refused: the verifier is not theirs; nothing is signed in', async () => {
  const victim = client();
  const attacker = client();
  try {
    // Mallory starts a sign-in of her own and keeps the code instead of letting it come back to her.
    gotrue.signInAs(MALLORY);
    const stolen = await browse(await attacker.sb.authorizeUrl(REDIRECT));
    // The victim's editor is waiting for its own sign-in when Mallory's link reaches its URI handler.
    gotrue.signInAs(OCTOCAT);
    await victim.sb.authorizeUrl(REDIRECT);
    await assert.rejects(victim.sb.complete(stolen), (err: Error) => /refused the sign-in: code challenge does not match/.test(err.message));
    assert.equal(await victim.sb.load(), null, 'the victim is not signed in as Mallory');
    assert.ok(![...victim.store.map.values()].some((v) => v.includes('access_token')), 'no session stored');
    // A callback that says Supabase refused (cancelled at GitHub) says so.
    await assert.rejects(victim.sb.complete(new URL(`${REDIRECT}?error=access_denied&error_description=The+user+cancelled`)), /failed: The user cancelled/);
  } finally {
    victim.sb.dispose();
    attacker.sb.dispose();
  }
});

test('a Supabase user nobody invited is refused by the server, with its reason', async () => {
  const { sb } = client();
  try {
    gotrue.signInAs({ id: 4242, login: 'stranger-danger', name: 'Stranger' });
    await sb.complete(await browse(await sb.authorizeUrl(REDIRECT)));
    await assert.rejects(sb.accept(), (err: Error & { code?: string }) => /no invitation for stranger-danger/.test(err.message));
  } finally {
    sb.dispose();
  }
});

test('refresh: the new access token reaches the API client (setToken and its listeners); the used refresh token is dead; sign-out ends the session at Supabase', async () => {
  const { store, sb } = client();
  try {
    gotrue.signInAs(OCTOCAT);
    await sb.complete(await browse(await sb.authorizeUrl(REDIRECT)));
    await sb.accept();
    const api = new ApiClient({ url: cp.server.url, token: '' });
    sb.attach(api);
    await api.get('/api/projects', C.Project.array());
    const first = api.target.token;
    const told: string[] = [];
    api.onToken((t) => told.push(t));
    const oldRefresh = sb.session!.refresh_token;
    // A token issued within the same second would be the same JWT.
    await new Promise((r) => setTimeout(r, 1100));
    const renewed = await sb.renew(first);
    assert.notEqual(renewed, first);
    assert.equal(api.target.token, renewed, 'the API client holds the new token');
    assert.deepEqual(told, [renewed], 'listeners (live Realtime channels) were told once');
    assert.equal((await api.get('/api/me', C.Me)).githubLogin, 'octocat');
    const reuse = await fetch(`${gotrue.url}/auth/v1/token?grant_type=refresh_token`, { method: 'POST', headers: { apikey: ANON, 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: oldRefresh }) });
    assert.equal(reuse.status, 400, 'a refresh token is good for one refresh');

    const current = sb.session!.refresh_token;
    assert.deepEqual(await sb.signOut(), { revoked: true });
    assert.equal(await sb.load(), null);
    assert.ok(![...store.map.values()].some((v) => v.includes(current)), 'forgotten here');
    const after = await fetch(`${gotrue.url}/auth/v1/token?grant_type=refresh_token`, { method: 'POST', headers: { apikey: ANON, 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: current }) });
    assert.equal(after.status, 400, 'and ended at Supabase');
  } finally {
    sb.dispose();
  }
});

test('supabase-js renews a session about to expire by itself (TOKEN_REFRESHED) and the API client gets the new token', { timeout: 120_000 }, async () => {
  const { sb } = client();
  const expiresIn = gotrue.expiresIn;
  try {
    // 91 s: inside supabase-js's 90 s margin after its first 30 s tick.
    gotrue.expiresIn = 91;
    gotrue.signInAs(OCTOCAT);
    await sb.complete(await browse(await sb.authorizeUrl(REDIRECT)));
    const api = new ApiClient({ url: cp.server.url, token: '' });
    sb.attach(api);
    const first = sb.session!.access_token;
    assert.equal(api.target.token, first);
    const renewed = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no refresh within 75 s')), 75_000);
      api.onToken((t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
    assert.notEqual(renewed, first);
    assert.equal(sb.session?.access_token, renewed);
    assert.ok(gotrue.calls.some((c) => c.grant === 'refresh_token' && c.status === 200));
  } finally {
    gotrue.expiresIn = expiresIn;
    sb.dispose();
  }
});
