// Where sign-in sessions are kept: one key per server, the refresh token in SecretStorage and the access
// token only in memory, and nothing of one server offered to another.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type { StoredSession } from '../../../client/session.ts';
import { insecureSignIn, refreshTokenStorage, serverKey, supabaseStorage, type Secrets } from '../../src/credentials.ts';

/** SecretStorage as a map (the extension-host tests use the real one). */
function secrets(): Secrets & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, get: async (k) => map.get(k), store: async (k, v) => void map.set(k, v), delete: async (k) => void map.delete(k) };
}
const session = (n: number): StoredSession => ({
  accessToken: `access-${n}`, refreshToken: `refresh-${n}`, expiresAt: '2030-01-01T00:00:00.000Z',
  user: { id: '00000000-0000-4000-8000-0000000000ee', name: 'The Octocat', githubLogin: 'octocat', email: null },
});

describe('serverKey', () => {
  it('is the same for spellings of one server and differs for another', () => {
    assert.equal(serverKey('https://OPS.example.com/'), 'https://ops.example.com');
    assert.equal(serverKey('https://ops.example.com:443'), 'https://ops.example.com');
    assert.equal(serverKey('https://ops.example.com/odooops//'), 'https://ops.example.com/odooops');
    assert.notEqual(serverKey('https://ops.example.com.evil.io'), serverKey('https://ops.example.com'));
    assert.notEqual(serverKey('http://ops.example.com'), serverKey('https://ops.example.com'));
    assert.notEqual(serverKey('https://ops.example.com:8443'), serverKey('https://ops.example.com'));
  });
});

describe('refreshTokenStorage', () => {
  it('keeps the refresh token and who signed in in SecretStorage, never the access token', async () => {
    const s = secrets();
    await refreshTokenStorage(s, 'https://a.example.com/').save(session(1));
    assert.deepEqual([...s.map.keys()], ['odooops.session:https://a.example.com']);
    const stored = [...s.map.values()].join();
    assert.match(stored, /refresh-1/);
    assert.match(stored, /octocat/);
    assert.doesNotMatch(stored, /access-1/);
  });

  it('hands back the access token it holds in memory; from storage alone, one already expired (the first use refreshes)', async () => {
    const s = secrets();
    await refreshTokenStorage(s, 'https://b.example.com').save(session(1));
    // Another storage object for the same server in this extension host (a reconnect): the same session.
    assert.deepEqual(await refreshTokenStorage(s, 'https://B.example.com/').load(), session(1));
    // Another window refreshed meanwhile: SecretStorage has its newer refresh token, which wins.
    s.map.set('odooops.session:https://b.example.com', JSON.stringify({ refreshToken: 'refresh-2', user: session(2).user }));
    const loaded = await refreshTokenStorage(s, 'https://b.example.com').load();
    assert.equal(loaded?.refreshToken, 'refresh-2');
    assert.equal(loaded?.accessToken, '');
    assert.ok(Date.parse(loaded!.expiresAt) < Date.now());
  });

  it('offers nothing of one server to another, and clear forgets it', async () => {
    const s = secrets();
    const a = refreshTokenStorage(s, 'https://c.example.com');
    await a.save(session(1));
    assert.equal(await refreshTokenStorage(s, 'https://c.example.com.evil.io').load(), undefined);
    assert.equal(await refreshTokenStorage(s, 'http://c.example.com').load(), undefined);
    await a.clear();
    assert.equal(s.map.size, 0);
    assert.equal(await a.load(), undefined);
  });

  it('reads what it did not write as signed out', async () => {
    const s = secrets();
    s.map.set('odooops.session:https://d.example.com', 'not json');
    assert.equal(await refreshTokenStorage(s, 'https://d.example.com').load(), undefined);
    s.map.set('odooops.session:https://d.example.com', JSON.stringify({ refreshToken: 'x' }));
    assert.equal(await refreshTokenStorage(s, 'https://d.example.com').load(), undefined);
  });
});

describe('supabaseStorage', () => {
  it('keeps supabase-js items under the server\'s own prefix', async () => {
    const s = secrets();
    const one = supabaseStorage(s, 'https://e.example.com/');
    await one.setItem('sb-x-auth-token-code-verifier', 'verifier');
    assert.deepEqual([...s.map.keys()], ['odooops.supabase:https://e.example.com:sb-x-auth-token-code-verifier']);
    assert.equal(await one.getItem('sb-x-auth-token-code-verifier'), 'verifier');
    assert.equal(await supabaseStorage(s, 'https://f.example.com').getItem('sb-x-auth-token-code-verifier'), null);
    await one.removeItem('sb-x-auth-token-code-verifier');
    assert.equal(s.map.size, 0);
  });
});

describe('insecureSignIn', () => {
  it('lets sign-in go over https, or plain http on this machine only', () => {
    for (const ok of ['https://ops.example.com', 'http://127.0.0.1:8080', 'http://127.0.0.2:9999', 'http://localhost:3000', 'http://[::1]:3000']) assert.equal(insecureSignIn(ok), null, ok);
    for (const bad of ['http://ops.example.com', 'http://192.168.1.10:8080', 'http://127.0.0.1.nip.io', 'http://localhost.evil.io']) {
      assert.match(String(insecureSignIn(bad)), /is not https: signing in would send your GitHub sign-in and the session's tokens unencrypted/, bad);
    }
  });
});
