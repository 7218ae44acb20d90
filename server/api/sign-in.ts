// /api/auth/*: signing in (a GitHub token exchanged for an OdooOps session, or a Supabase user taken
// in), refreshing with rotation, and signing out. github and refresh come before anyone is
// authenticated, so they run as the service through ops' SECURITY DEFINER functions, and are
// rate-limited per client address before any work (a GitHub token costs two calls to GitHub).
import type { IncomingMessage } from 'node:http';
import type pg from 'pg';
import * as C from '../../contract/index.ts';
import { asUser, SERVICE_CLAIMS, type Claims } from '../db/session.ts';
import { GitHubTokenRefused, githubIdentity } from '../auth/github-identity.ts';
import {
  parseRefreshToken, REFRESH_LIFETIME_SECONDS, refreshToken, ROTATION_GRACE_SECONDS, signAccessToken,
} from '../auth/sessions.ts';
import { AuthError, type TokenVerifier } from '../auth/tokens.ts';
import { TokenBucket } from '../realtime/client-limits.ts';
import { HttpError } from './errors.ts';

export interface SignInOptions {
  pool: pg.Pool;
  /** Signs access tokens and refresh tokens' MACs. */
  secret: Uint8Array;
  verifier: TokenVerifier;
  /** Where GitHub's API is (https://api.github.com; GitHub Enterprise, or a test double). */
  githubApiUrl: string;
  /**
   * The OAuth apps whose tokens may sign people in (GitHub's X-OAuth-Client-Id): a token only proves who
   * someone is to whoever receives it, so a token another app (or another server) received must not
   * become a session here. By default VS Code's GitHub sign-in and this server's own app (device flow).
   */
  githubClientIds: ReadonlySet<string>;
  sessionTtlSeconds: number;
  /** A Supabase control plane: people sign in with Supabase Auth and are taken in by /api/auth/accept. */
  supabase: boolean;
  /** Sign-ins per client address: a burst, then so many a minute (default 10, then 10 a minute). */
  rateLimit?: { burst: number; perMinute: number };
}

export interface AuthReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** GitHub checks in flight at once, whoever asks: past it a sign-in is answered 503 at once. */
const MAX_GITHUB_CHECKS = 16;

/** Token buckets per client address; full ones are dropped when the map grows, so it holds only recent clients. */
class AddressLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly burst: number;
  private readonly perSecond: number;
  constructor(burst: number, perMinute: number) {
    this.burst = burst;
    this.perSecond = perMinute / 60;
  }
  /** Seconds to wait before the next try; 0: go ahead. */
  take(address: string): number {
    if (this.buckets.size > 10_000) for (const [a, b] of this.buckets) if (b.full) this.buckets.delete(a);
    let b = this.buckets.get(address);
    if (!b) this.buckets.set(address, (b = new TokenBucket(this.burst, this.perSecond)));
    return b.take() ? 0 : Math.ceil(1 / this.perSecond);
  }
}

export class SignIn {
  private readonly opts: SignInOptions;
  private readonly signIns: AddressLimiter;
  // A refresh costs no call to GitHub: a client may refresh far more often (many processes, short TTLs).
  private readonly refreshes: AddressLimiter;
  private githubChecks = 0;

  constructor(opts: SignInOptions) {
    this.opts = opts;
    const limit = opts.rateLimit ?? { burst: 10, perMinute: 10 };
    this.signIns = new AddressLimiter(limit.burst, limit.perMinute);
    this.refreshes = new AddressLimiter(limit.burst * 10, limit.perMinute * 10);
  }

  /** Answers a request under /api/auth/, or undefined for a path that is not one of these. */
  async handle(req: IncomingMessage, method: string, path: string, readJson: () => Promise<unknown>): Promise<AuthReply | undefined> {
    const route = ({ '/api/auth/github': this.github, '/api/auth/refresh': this.refresh, '/api/auth/logout': this.logout, '/api/auth/accept': this.accept } as const)[path];
    if (!route) return undefined;
    if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${path}`);
    return route.call(this, req, readJson);
  }

  private limited(limiter: AddressLimiter, req: IncomingMessage): AuthReply | undefined {
    // The connection's own address: a proxy in front makes every client one address (SECURITY.md).
    const wait = limiter.take(req.socket.remoteAddress ?? 'unknown');
    if (!wait) return undefined;
    return {
      status: 429, headers: { 'retry-after': String(wait) },
      body: { error: { code: 'rate_limited', message: `too many sign-in attempts from this address: try again in ${wait} s` } },
    };
  }

  private async github(req: IncomingMessage, readJson: () => Promise<unknown>): Promise<AuthReply> {
    if (this.opts.supabase) {
      throw new HttpError(409, 'use_supabase_auth', 'this server signs people in with Supabase Auth (its GitHub provider), not with GitHub tokens',
        'Sign in from the VS Code extension (OdooOps: Sign in); GET /api/health says how (auth.supabase).');
    }
    const refused = this.limited(this.signIns, req);
    if (refused) return refused;
    const input = C.GitHubSignIn.parse(await readJson());
    if (this.githubChecks >= MAX_GITHUB_CHECKS) {
      throw new HttpError(503, 'busy', 'too many sign-ins at once', 'Try again in a few seconds.');
    }
    this.githubChecks++;
    let who;
    try {
      who = await githubIdentity(this.opts.githubApiUrl, input.githubToken);
    } catch (err) {
      if (err instanceof GitHubTokenRefused) throw new HttpError(401, 'github_token_refused', err.message, 'Sign in to GitHub again (odooops login) and retry.');
      throw new HttpError(502, 'github_unavailable', `could not ask GitHub who this token belongs to: ${(err as Error).message}`,
        'Nothing was changed; try again later. If it persists, the server\'s operator checks its access to GitHub (--github-api-url).');
    } finally {
      this.githubChecks--;
    }
    if (!who.clientId || !this.opts.githubClientIds.has(who.clientId)) {
      throw new HttpError(403, 'github_app_not_allowed',
        `this GitHub token was issued to ${who.clientId ? `another app (client id ${who.clientId})` : 'no OAuth app this server knows (a personal access token?)'}: this server takes tokens of VS Code's GitHub sign-in and of its own app only`,
        'Sign in from VS Code (OdooOps: Sign in) or with `odooops login` (GitHub\'s device flow); the operator may allow another app with --github-allowed-client-id.');
    }
    const r = await asUser(this.opts.pool, SERVICE_CLAIMS, async (c) => (await c.query(
      `select ops.sign_in_github($1, $2, $3, $4, $5, make_interval(secs => $6)) as r`,
      [who.id, who.login, who.name, who.verifiedEmail, userAgent(req), REFRESH_LIFETIME_SECONDS],
    )).rows[0].r as { refused?: true; user: C.UserProfile; session: { id: string; generation: number }; joined: C.AuthSession['joined'] });
    if (r.refused) {
      throw new HttpError(403, 'no_invitation', `no invitation for ${who.login} on this server: ask a project admin to run \`odooops member invite PROJECT --github ${who.login} --role ROLE\``,
        'Invitations are for a GitHub login or a verified email, and expire after 14 days; sign in again once invited.');
    }
    return { status: 200, body: await this.session(r.user, r.session.id, r.session.generation, r.joined) };
  }

  private async refresh(req: IncomingMessage, readJson: () => Promise<unknown>): Promise<AuthReply> {
    const refused = this.limited(this.refreshes, req);
    if (refused) return refused;
    const input = C.RefreshRequest.parse(await readJson());
    const parsed = parseRefreshToken(this.opts.secret, input.refreshToken);
    if (!parsed) throw new HttpError(401, 'invalid_refresh_token', 'this is not a refresh token of this server', SIGN_IN_AGAIN);
    const r = await asUser(this.opts.pool, SERVICE_CLAIMS, async (c) => (await c.query(
      `select ops.refresh_session($1, $2, make_interval(secs => $3), make_interval(secs => $4)) as r`,
      [parsed.sid, parsed.generation, REFRESH_LIFETIME_SECONDS, ROTATION_GRACE_SECONDS],
    )).rows[0].r as { status: string; reason?: string; generation?: number; user?: C.UserProfile; joined?: C.AuthSession['joined'] });
    if (r.status === 'rotated' || r.status === 'current') return { status: 200, body: await this.session(r.user!, parsed.sid, r.generation!, r.joined ?? []) };
    const why: Record<string, string> = {
      unknown: 'this session does not exist on this server',
      expired: 'this session has expired (unused for 30 days)',
      revoked: r.reason === 'replay' ? 'this session was revoked: an old refresh token of it was used again' : 'this session was signed out',
      replayed: 'this refresh token was already used: the session is revoked, as someone else may hold a copy of it',
    };
    throw new HttpError(401, 'session_ended', why[r.status] ?? 'this session cannot be refreshed', SIGN_IN_AGAIN);
  }

  private async logout(req: IncomingMessage): Promise<AuthReply> {
    const claims = await this.bearer(req);
    if (typeof claims.sid !== 'string') {
      throw new HttpError(400, 'not_a_session', 'this token is not a sign-in session: there is nothing to sign out of',
        'Tokens the operator signed (odooops token) expire by themselves; the operator can change the server\'s secret to end them all.');
    }
    const ended = await asUser(this.opts.pool, claims, async (c) => (await c.query('select ops.end_session($1) as ok', [claims.sid])).rows[0].ok as boolean);
    return { status: 200, body: { signedOut: ended } };
  }

  private async accept(req: IncomingMessage): Promise<AuthReply> {
    if (!this.opts.supabase) {
      throw new HttpError(409, 'no_supabase_auth', 'this server does not use Supabase Auth: sign in with a GitHub token (POST /api/auth/github)',
        'odooops login does that for you.');
    }
    const claims = await this.bearer(req);
    if (claims.sid !== undefined || claims.role !== 'authenticated') {
      throw new HttpError(400, 'not_a_supabase_session', 'send the Supabase Auth access token of the person signing in');
    }
    const refused = this.limited(this.signIns, req);
    if (refused) return refused;
    const r = await asUser(this.opts.pool, SERVICE_CLAIMS, async (c) =>
      (await c.query('select ops.accept_supabase_identity($1) as r', [claims.sub])).rows[0].r as { refused?: string; github_login?: string } & C.AcceptedSignIn);
    if (r.refused === 'no_invitation') {
      throw new HttpError(403, 'no_invitation', `no invitation for ${r.github_login ?? 'this GitHub account'} on this server: ask a project admin to run \`odooops member invite PROJECT --github ${r.github_login ?? 'LOGIN'} --role ROLE\``);
    }
    if (r.refused === 'github_account_taken') {
      throw new HttpError(409, 'github_account_taken', `the GitHub account ${r.github_login ?? ''} already belongs to another user of this server`.replace('  ', ' '),
        'Ask the operator: the account signed in here before without Supabase Auth.');
    }
    if (r.refused) {
      throw new HttpError(403, 'no_github_identity', 'this Supabase user did not sign in with GitHub: OdooOps knows people by their GitHub account',
        'Sign in to Supabase with the GitHub provider.');
    }
    return { status: 200, body: { user: r.user, joined: r.joined } satisfies C.AcceptedSignIn };
  }

  private async bearer(req: IncomingMessage): Promise<Claims> {
    const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token) throw new AuthError('missing bearer token');
    return this.opts.verifier.verify(token);
  }

  private async session(user: C.UserProfile, sid: string, generation: number, joined: C.AuthSession['joined']): Promise<C.AuthSession> {
    const access = await signAccessToken(this.opts.secret, { sub: user.id, sid, email: user.email }, this.opts.sessionTtlSeconds);
    return { accessToken: access.token, refreshToken: refreshToken(this.opts.secret, sid, generation), expiresAt: access.expiresAt.toISOString(), user, joined };
  }
}

const SIGN_IN_AGAIN = 'Sign in again: odooops login (or OdooOps: Sign in in VS Code).';
const userAgent = (req: IncomingMessage) => String(req.headers['user-agent'] ?? '').slice(0, 300) || null;
