// Bearer tokens are Supabase-style JWTs: sub = user id, role = authenticated. In embedded mode the
// server signs them with a local HS256 secret; against a Supabase project it verifies Supabase's own
// tokens with the project's JWT secret or its JWKS endpoint.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { SignJWT, createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { Claims } from '../db/session.ts';
import { homeFiles } from '../paths.ts';

/**
 * A refused bearer token. code tells a client what to do: token_expired (refresh the session and try
 * again), session_ended (signed out or revoked: sign in again), unauthorized (anything else).
 */
export class AuthError extends Error {
  readonly code: 'unauthorized' | 'token_expired' | 'session_ended';
  constructor(message: string, code: AuthError['code'] = 'unauthorized') {
    super(message);
    this.code = code;
  }
}

export interface TokenVerifier {
  verify(token: string): Promise<Claims>;
}

const TokenClaims = z.looseObject({
  sub: z.uuid(),
  role: z.string(),
  email: z.string().nullish(),
});

export function hsVerifier(secret: Uint8Array): TokenVerifier {
  return { verify: (t) => verifyWith(t, secret) };
}

export function jwksVerifier(url: string): TokenVerifier {
  const keys = createRemoteJWKSet(new URL(url));
  return { verify: (t) => verifyWith(t, keys) };
}

async function verifyWith(token: string, key: Uint8Array | JWTVerifyGetKey): Promise<Claims> {
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, key as Uint8Array));
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw code === 'ERR_JWT_EXPIRED'
      ? new AuthError('the token has expired: get a new one', 'token_expired')
      : new AuthError('the token is not valid for this server');
  }
  const parsed = TokenClaims.safeParse(payload);
  if (!parsed.success) throw new AuthError('the token carries no user (sub) or role');
  if (parsed.data.role !== 'authenticated' && parsed.data.role !== 'service_role') {
    throw new AuthError(`tokens with role "${parsed.data.role}" cannot use this API: sign in first`);
  }
  return parsed.data as Claims;
}

/**
 * A Supabase project's tokens (its JWKS) and this server's own operator tokens (odooops token, the
 * connection file's), told apart by their issuer: a server on JWKS must still take the operator's token,
 * or nobody could grant the first instance admin. Minting one takes the server's secret file, which
 * only whoever already holds the server's database credentials can read.
 */
export function withLocalTokens(secret: Uint8Array, supabase: TokenVerifier): TokenVerifier {
  const local = hsVerifier(secret);
  return {
    verify(token: string) {
      let iss: unknown;
      try {
        iss = decodeJwt(token).iss;
      } catch {
        return Promise.reject(new AuthError('the token is not valid for this server'));
      }
      return iss === LOCAL_ISSUER ? local.verify(token) : supabase.verify(token);
    },
  };
}

const LOCAL_ISSUER = 'odooops-local';

export async function signToken(secret: Uint8Array, claims: { sub: string; email?: string; role?: string }, ttl = '30d'): Promise<string> {
  return new SignJWT({ role: claims.role ?? 'authenticated', email: claims.email ?? null, aud: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setIssuer(LOCAL_ISSUER)
    .setExpirationTime(ttl)
    .sign(secret);
}

/** The local secret and user of an OdooOps directory, created on first use. */
export function localIdentity(home: string): { secret: Uint8Array; userId: string } {
  const files = homeFiles(home);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  if (!existsSync(files.jwtSecret)) writeFileSync(files.jwtSecret, randomBytes(32).toString('base64url'), { mode: 0o600 });
  if (!existsSync(files.localUser)) writeFileSync(files.localUser, JSON.stringify({ userId: randomUUID() }) + '\n', { mode: 0o600 });
  const secret = new TextEncoder().encode(readFileSync(files.jwtSecret, 'utf8').trim());
  const { userId } = z.object({ userId: z.uuid() }).parse(JSON.parse(readFileSync(files.localUser, 'utf8')));
  return { secret, userId };
}
