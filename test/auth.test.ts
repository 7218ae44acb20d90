// Tokens from a Supabase project: verified with the project's JWT secret (HS256) or, for projects on
// asymmetric signing keys, with its JWKS endpoint (served here on loopback, as Supabase serves
// /auth/v1/.well-known/jwks.json).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { startServer, type RunningServer } from '../server/app.ts';
import { call, tempHome } from './helpers/control-plane.ts';

let jwks: Server;
let server: RunningServer;
let privateKey: CryptoKey;
let otherKey: CryptoKey;
const homes: string[] = [];

before(async () => {
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const home = tempHome();
  homes.push(home);
  server = await startServer({ home, fast: true, log: () => {}, worker: false, jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json` });
});
after(async () => {
  await server?.stop(500);
  jwks?.close();
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

const supabaseToken = (key: CryptoKey, sub: string, kid = 'k1') =>
  new SignJWT({ role: 'authenticated', aud: 'authenticated', email: 'dev@example.invalid' })
    .setProtectedHeader({ alg: 'ES256', kid }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(key);

test('a token signed with the project key is accepted and acts as its user', async () => {
  const sub = randomUUID();
  const token = await supabaseToken(privateKey, sub);
  const me = await call(server.url, token, 'GET', '/api/me');
  assert.equal(me.status, 200);
  assert.equal(me.body.userId, sub);
  // Creating projects is an instance admin's right (granted here as the operator would, odooops admin grant).
  assert.equal((await call(server.url, token, 'POST', '/api/projects', { slug: 'jwks-proj', name: 'J' })).status, 403);
  await server.pool.query('insert into ops.instance_admins (user_id) values ($1)', [sub]);
  assert.equal((await call(server.url, token, 'POST', '/api/projects', { slug: 'jwks-proj', name: 'J' })).status, 201);
  const mine = await call(server.url, token, 'GET', '/api/projects');
  assert.deepEqual(mine.body.map((p: { slug: string; role: string }) => [p.slug, p.role]), [['jwks-proj', 'admin']]);
});

test('tokens signed by another key are refused; the operator\'s own token still works, and only with the server\'s secret', async () => {
  assert.equal((await call(server.url, await supabaseToken(otherKey, randomUUID()), 'GET', '/api/me')).status, 401);
  // The operator's token (connection.json, odooops token): without it nobody could grant the first instance admin.
  const me = await call(server.url, server.token, 'GET', '/api/me');
  assert.equal(me.status, 200);
  assert.equal(me.body.userId, server.userId);
  assert.equal(me.body.instanceAdmin, true);
  // The local issuer with any other key (or a Supabase key claiming to be local) is refused.
  const forged = await new SignJWT({ role: 'authenticated', aud: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
    .setSubject(server.userId).setIssuer('odooops-local').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode('not-the-server-secret-0123456789'));
  assert.equal((await call(server.url, forged, 'GET', '/api/me')).status, 401);
  const claimsLocal = await new SignJWT({ role: 'authenticated', aud: 'authenticated' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setSubject(server.userId).setIssuer('odooops-local').setIssuedAt().setExpirationTime('1h').sign(privateKey);
  assert.equal((await call(server.url, claimsLocal, 'GET', '/api/me')).status, 401, 'a project-signed token cannot pass as the local issuer');
});

test('with --jwt-secret, Supabase HS256 tokens are accepted', async () => {
  const home = tempHome();
  homes.push(home);
  const secret = 'super-secret-jwt-token-with-at-least-32-characters-long';
  const s = await startServer({ home, fast: true, log: () => {}, worker: false, jwtSecret: secret });
  try {
    const sub = randomUUID();
    const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
    const me = await call(s.url, token, 'GET', '/api/me');
    assert.equal(me.body.userId, sub);
  } finally {
    await s.stop(500);
  }
});
