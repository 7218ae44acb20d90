// OdooOps's own sign-in sessions (ops.sessions): short-lived access tokens that name their session
// (`sid`), and refresh tokens that rotate. A refresh token is <sid>.<generation>.<HMAC>: the server can
// check it without storing anything secret, and the generation the database holds says which one is
// current, so a copy that was already used is recognised as a replay.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { SignJWT, decodeJwt, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Claims } from '../db/session.ts';
import { AuthError, type TokenVerifier } from './tokens.ts';

/** The issuer of session access tokens (the operator's `odooops token` ones say odooops-local). */
export const SESSION_ISSUER = 'odooops';
/** Access tokens live an hour unless the operator says otherwise (--session-ttl). */
export const DEFAULT_SESSION_TTL_SECONDS = 3600;
/** A refresh token works for 30 days after the last refresh (sliding). */
export const REFRESH_LIFETIME_SECONDS = 30 * 24 * 3600;
/** Two processes sharing one stored session may refresh at once: the loser, within this, gets the winner's pair. */
export const ROTATION_GRACE_SECONDS = 10;

const SessionClaims = z.looseObject({ sub: z.uuid(), sid: z.uuid(), role: z.literal('authenticated'), exp: z.number() });

export async function signAccessToken(secret: Uint8Array, claims: { sub: string; sid: string; email: string | null }, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ role: 'authenticated', aud: 'authenticated', email: claims.email, sid: claims.sid })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(SESSION_ISSUER)
    .setIssuedAt(now)
    .setJti(randomUUID()) // two tokens of one session issued in the same second still differ
    .setExpirationTime(now + ttlSeconds)
    .sign(secret);
  return { token, expiresAt: new Date((now + ttlSeconds) * 1000) };
}

const mac = (secret: Uint8Array, sid: string, generation: number) =>
  createHmac('sha256', secret).update(`odooops-refresh:${sid}:${generation}`).digest('base64url');

export function refreshToken(secret: Uint8Array, sid: string, generation: number): string {
  return `${sid}.${generation}.${mac(secret, sid, generation)}`;
}

/** The session and generation a refresh token names, if the server made it; undefined otherwise. */
export function parseRefreshToken(secret: Uint8Array, token: string): { sid: string; generation: number } | undefined {
  const m = /^([0-9a-f-]{36})\.([1-9][0-9]{0,9})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m || !z.uuid().safeParse(m[1]).success) return undefined;
  const generation = Number(m[2]);
  if (!Number.isSafeInteger(generation) || generation > 2 ** 31 - 1) return undefined;
  const expected = Buffer.from(mac(secret, m[1]!, generation));
  const given = Buffer.from(m[3]!);
  return given.length === expected.length && timingSafeEqual(given, expected) ? { sid: m[1]!, generation } : undefined;
}

/**
 * Verifies bearer tokens for the API and the Realtime gateway. A token naming a session (`sid`) must be
 * signed with this server's secret and its session must be live: one primary-key read of ops.sessions
 * per verification, with no cache, so a sign-out or a revoked replay takes effect at the next request
 * (a Realtime channel already joined is checked again only when it sends a new token, or at the
 * token's exp). Any other token (Supabase's, the operator's `odooops token`) goes to `base`.
 */
export function sessionVerifier(pool: pg.Pool, secret: Uint8Array, base: TokenVerifier): TokenVerifier {
  return {
    async verify(token: string): Promise<Claims> {
      let sid: unknown;
      try {
        sid = decodeJwt(token).sid;
      } catch {
        throw new AuthError('the token is not valid for this server');
      }
      if (sid === undefined) return base.verify(token);
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, secret, { issuer: SESSION_ISSUER, algorithms: ['HS256'] }));
      } catch (err) {
        throw (err as { code?: string }).code === 'ERR_JWT_EXPIRED'
          ? new AuthError('the token has expired: refresh the session (POST /api/auth/refresh) and try again', 'token_expired')
          : new AuthError('the token is not valid for this server');
      }
      const claims = SessionClaims.safeParse(payload);
      if (!claims.success) throw new AuthError('the token is not valid for this server');
      const { rows } = await pool.query<{ live: boolean }>(
        'select revoked_at is null and expires_at > now() as live from ops.sessions where id = $1 and user_id = $2', [claims.data.sid, claims.data.sub]);
      if (!rows[0]?.live) throw new AuthError('this session has ended (signed out, or revoked): sign in again', 'session_ended');
      return claims.data as Claims;
    },
  };
}
