// A stand-in for a Supabase project's Auth (GoTrue) — a named test double: Supabase cannot run here. It
// answers what supabase-js's auth does with flowType 'pkce', as GoTrue documents and implements it:
//   GET  /auth/v1/authorize?provider=github&redirect_to=…&code_challenge=…&code_challenge_method=s256
//        GoTrue sends the browser to GitHub and back; the double skips GitHub (the account "signed in at
//        github.com" is the one the test chose), writes auth.users and auth.identities as GoTrue does from
//        GitHub's answers, and redirects to redirect_to with ?code= bound to the code_challenge
//   POST /auth/v1/token?grant_type=pkce           {auth_code, code_verifier}: S256 checked, code used once
//   POST /auth/v1/token?grant_type=refresh_token  {refresh_token}: rotates; a used one is refused
//   GET  /auth/v1/user, POST /auth/v1/logout (scope global: every refresh token of the user ends)
// Access tokens are HS256 JWTs signed with the project's JWT secret (the OdooOps server's --jwt-secret),
// with GoTrue's claims. Every request must carry the anon key (apikey), as Supabase's gateway wants.
// The project's Realtime is played by the OdooOps server's own gateway (the same protocol): websocket
// upgrades to /realtime/v1/websocket are piped to it, so one URL is the whole "Supabase project".
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SignJWT, jwtVerify } from 'jose';
import type pg from 'pg';

export interface GitHubIdentity {
  id: number;
  login: string;
  name?: string;
  email?: string;
}

export interface GoTrueDouble {
  url: string;
  /** The person signed in at github.com in the browser: who the next authorize comes back as. */
  signInAs(account: GitHubIdentity): void;
  /** Every request, for the tests to check (path, grant type, the code's challenge method). */
  calls: { method: string; path: string; grant: string | null; status: number }[];
  /** How long access tokens live (seconds; GoTrue's default is 3600). */
  expiresIn: number;
  close(): Promise<void>;
}

interface FlowState { challenge: string; method: 's256' | 'plain'; userId: string; created: number; used: boolean }
interface RefreshToken { userId: string; sessionId: string; revoked: boolean }

const CODE_TTL_MS = 5 * 60_000;

export async function startGoTrueDouble(opts: {
  pool: pg.Pool; jwtSecret: string; anonKey: string;
  /** The OdooOps server whose gateway plays the project's Realtime. */
  realtimeUpstream?: string;
  /** Seconds access tokens live (GoTrue's default: 3600). */
  expiresIn?: number;
  /** A port chosen beforehand (the server was told this URL before the double could start). */
  port?: number;
  /** The loopback address to listen on (127.0.0.1 by default). */
  host?: string;
}): Promise<GoTrueDouble> {
  const host = opts.host ?? '127.0.0.1';
  const secret = new TextEncoder().encode(opts.jwtSecret);
  // GoTrue's own tables, as much of them as OdooOps reads (ops.accept_supabase_identity): GoTrue
  // creates them with its migrations in a real project.
  await opts.pool.query(`
    create schema if not exists auth;
    create table if not exists auth.users (id uuid primary key, email text, raw_user_meta_data jsonb, raw_app_meta_data jsonb,
      created_at timestamptz default now(), updated_at timestamptz default now());
    create table if not exists auth.identities (provider_id text not null, user_id uuid not null references auth.users (id),
      identity_data jsonb not null, provider text not null, last_sign_in_at timestamptz, created_at timestamptz default now(),
      updated_at timestamptz, id uuid primary key default gen_random_uuid(), unique (provider_id, provider))`);
  let account: GitHubIdentity | undefined;
  const flows = new Map<string, FlowState>();
  const refreshTokens = new Map<string, RefreshToken>();
  const calls: GoTrueDouble['calls'] = [];

  const send = (res: ServerResponse, status: number, body: unknown, req: IncomingMessage, grant: string | null) => {
    calls.push({ method: req.method!, path: new URL(req.url!, 'http://x').pathname, grant, status });
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  // GoTrue's error shape (supabase-js reads error_code and msg).
  const fail = (res: ServerResponse, req: IncomingMessage, grant: string | null, status: number, errorCode: string, msg: string) =>
    send(res, status, { code: status, error_code: errorCode, msg }, req, grant);

  /** The user as GoTrue stores it after a GitHub sign-in (its identity from GitHub's answers). */
  const upsertUser = async (a: GitHubIdentity): Promise<string> => {
    const known = await opts.pool.query(`select user_id from auth.identities where provider = 'github' and provider_id = $1`, [String(a.id)]);
    const id: string = known.rows[0]?.user_id ?? randomUUID();
    const identity = { sub: String(a.id), provider_id: String(a.id), user_name: a.login, preferred_username: a.login, full_name: a.name ?? null, name: a.name ?? null, email: a.email ?? null, email_verified: !!a.email };
    await opts.pool.query(`insert into auth.users (id, email, raw_user_meta_data, raw_app_meta_data) values ($1, $2, $3, '{"provider":"github","providers":["github"]}')
      on conflict (id) do update set email = excluded.email, raw_user_meta_data = excluded.raw_user_meta_data, updated_at = now()`, [id, a.email ?? null, identity]);
    await opts.pool.query(`insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at) values ($1, $2, $3, 'github', now())
      on conflict (provider_id, provider) do update set identity_data = excluded.identity_data, last_sign_in_at = now(), updated_at = now()`, [String(a.id), id, identity]);
    return id;
  };
  const userJson = async (id: string) => {
    const { rows: [u] } = await opts.pool.query('select * from auth.users where id = $1', [id]);
    const { rows: ids } = await opts.pool.query('select * from auth.identities where user_id = $1', [id]);
    return {
      id, aud: 'authenticated', role: 'authenticated', email: u?.email ?? '', app_metadata: u?.raw_app_meta_data ?? {}, user_metadata: u?.raw_user_meta_data ?? {},
      identities: ids.map((i) => ({ identity_id: i.id, id: i.provider_id, user_id: id, identity_data: i.identity_data, provider: i.provider })),
      created_at: u?.created_at, updated_at: u?.updated_at, is_anonymous: false,
    };
  };
  const issue = async (userId: string, sessionId: string) => {
    const { rows: [u] } = await opts.pool.query('select email from auth.users where id = $1', [userId]);
    const expiresIn = double.expiresIn;
    const now = Math.floor(Date.now() / 1000);
    const accessToken = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: u?.email ?? '', session_id: sessionId, aal: 'aal1', is_anonymous: false })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(userId).setIssuer(`${double.url}/auth/v1`).setIssuedAt(now).setExpirationTime(now + expiresIn).sign(secret);
    const refreshToken = randomBytes(12).toString('base64url');
    refreshTokens.set(refreshToken, { userId, sessionId, revoked: false });
    return { access_token: accessToken, token_type: 'bearer', expires_in: expiresIn, expires_at: now + expiresIn, refresh_token: refreshToken, user: await userJson(userId) };
  };
  const bearerUser = async (req: IncomingMessage): Promise<{ sub: string; session_id: string } | null> => {
    const token = /^Bearer (.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!token) return null;
    try {
      const { payload } = await jwtVerify(token, secret);
      return { sub: String(payload.sub), session_id: String(payload.session_id) };
    } catch {
      return null;
    }
  };

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const grant = url.searchParams.get('grant_type');
    try {
      let text = '';
      for await (const c of req) text += c;
      const body = text ? JSON.parse(text) as Record<string, string> : {};
      if (url.pathname === '/auth/v1/authorize' && req.method === 'GET') {
        // A browser navigation: no apikey header (supabase-js puts none in the URL either).
        const redirect = url.searchParams.get('redirect_to');
        const challenge = url.searchParams.get('code_challenge');
        const method = (url.searchParams.get('code_challenge_method') ?? '').toLowerCase();
        if (url.searchParams.get('provider') !== 'github') return fail(res, req, grant, 400, 'validation_failed', 'Unsupported provider: provider is not enabled');
        if (!redirect || !challenge || (method !== 's256' && method !== 'plain')) return fail(res, req, grant, 400, 'validation_failed', 'PKCE flow requires code_challenge and code_challenge_method');
        if (!account) return fail(res, req, grant, 400, 'validation_failed', 'the double has no GitHub account signed in (signInAs)');
        const code = randomUUID();
        flows.set(code, { challenge, method: method as 's256' | 'plain', userId: await upsertUser(account), created: Date.now(), used: false });
        const back = new URL(redirect);
        back.searchParams.set('code', code);
        calls.push({ method: 'GET', path: url.pathname, grant, status: 302 });
        return res.writeHead(302, { location: back.toString() }).end();
      }
      if (req.headers.apikey !== opts.anonKey) return fail(res, req, grant, 401, 'no_api_key', 'No API key found in request');
      if (url.pathname === '/auth/v1/token' && req.method === 'POST' && grant === 'pkce') {
        const flow = flows.get(body.auth_code ?? '');
        if (!flow || flow.used || Date.now() - flow.created > CODE_TTL_MS) return fail(res, req, grant, 404, 'flow_state_not_found', 'invalid flow state, no valid flow state found');
        const verifier = body.code_verifier ?? '';
        const computed = flow.method === 's256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
        // A wrong verifier spends the code too (GoTrue deletes the flow state): it cannot be guessed at.
        flow.used = true;
        if (!verifier || computed !== flow.challenge) return fail(res, req, grant, 403, 'bad_code_verifier', 'code challenge does not match previously saved code verifier');
        return send(res, 200, await issue(flow.userId, randomUUID()), req, grant);
      }
      if (url.pathname === '/auth/v1/token' && req.method === 'POST' && grant === 'refresh_token') {
        const known = refreshTokens.get(body.refresh_token ?? '');
        if (!known || known.revoked) return fail(res, req, grant, 400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
        known.revoked = true;
        return send(res, 200, await issue(known.userId, known.sessionId), req, grant);
      }
      if (url.pathname === '/auth/v1/user' && req.method === 'GET') {
        const who = await bearerUser(req);
        if (!who) return fail(res, req, grant, 403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature');
        return send(res, 200, await userJson(who.sub), req, grant);
      }
      if (url.pathname === '/auth/v1/logout' && req.method === 'POST') {
        const who = await bearerUser(req);
        if (!who) return fail(res, req, grant, 403, 'bad_jwt', 'invalid JWT: unable to parse or verify signature');
        const scope = url.searchParams.get('scope') ?? 'global';
        for (const t of refreshTokens.values()) if (t.userId === who.sub && (scope === 'global' || t.sessionId === who.session_id)) t.revoked = true;
        calls.push({ method: 'POST', path: url.pathname, grant, status: 204 });
        return res.writeHead(204).end();
      }
      fail(res, req, grant, 404, 'not_found', `the double does not serve ${req.method} ${url.pathname}`);
    } catch (err) {
      fail(res, req, grant, 500, 'unexpected_failure', (err as Error).message);
    }
  });
  // Realtime: the upgrade request and everything after it, byte for byte, to the OdooOps gateway.
  const piped = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (req, socket, head) => {
    if (!opts.realtimeUpstream || !req.url?.startsWith('/realtime/v1/')) return socket.destroy();
    const up = new URL(opts.realtimeUpstream);
    const upstream = connect(Number(up.port), up.hostname, () => {
      const headers = Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k === 'host' ? 'Host' : k}: ${k === 'host' ? up.host : x}`));
      upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`);
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    for (const s of [socket, upstream]) {
      piped.add(s);
      s.on('close', () => piped.delete(s));
    }
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, host, () => r()));
  const double: GoTrueDouble = {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    signInAs: (a) => void (account = a),
    calls,
    expiresIn: opts.expiresIn ?? 3600,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
      for (const s of piped) s.destroy();
    }),
  };
  return double;
}
