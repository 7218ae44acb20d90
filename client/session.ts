// A signed-in OdooOps session, shared by the CLI and the extension: it holds the access and refresh
// tokens, hands out an access token that stays valid for a while (refreshing first, one refresh at a
// time), can refresh in the background before expiry (long-lived processes), tells the API client
// every new token (api.setToken: later requests and live Realtime channels use it), and keeps the
// session where the caller stores secrets (the CLI: keychain or a 0600 file; the extension:
// SecretStorage). Refresh tokens rotate: each is good for one refresh, so a stored session is saved
// again after every refresh, and a process sharing the storage picks the newer pair up.
// No Node-only modules here: the extension bundles this.
import type { z } from 'zod';
import * as C from '../contract/index.ts';
import { CliError, EXIT } from './api-client.ts';

export const StoredSession = C.AuthSession.pick({ accessToken: true, refreshToken: true, expiresAt: true, user: true });
export type StoredSession = z.infer<typeof StoredSession>;

/** Where a session is kept between runs (one server's). */
export interface SessionStorage {
  load(): Promise<StoredSession | undefined>;
  save(session: StoredSession): Promise<void>;
  clear(): Promise<void>;
}

/** What a session feeds: the API client (its setToken, and its hook for a fresh token per request). */
export interface SessionConsumer {
  setToken(token: string): void;
  useSession?(session: TokenSource | undefined): void;
}
export interface TokenSource {
  /** A token valid for a while yet (refreshed first when needed). */
  token(): Promise<string>;
  /** A new token after the server said `stale` had expired (refreshed unless that happened meanwhile). */
  renew(stale: string): Promise<string>;
}

export interface SessionManagerOptions {
  /** The server's base URL. */
  url: string;
  storage: SessionStorage;
  fetch?: typeof fetch;
  now?: () => number;
  /** A background refresh failed (the session goes on until it expires; it is tried again). */
  onRefreshError?: (err: Error) => void;
}

/** Refused for good (signed out, revoked, expired, replayed): only a new sign-in helps. */
export const SESSION_ENDED = 'session_ended';
const SIGN_IN_AGAIN = 'Sign in again: `odooops login` (or OdooOps: Sign in in VS Code).';

/**
 * One server's identity in storage keys: scheme, host and port (lower case, default ports dropped) and
 * the path without a trailing slash, so "https://ops.example.com/" and "https://OPS.example.com" are the
 * same server and "https://ops.example.com.evil.io" is not.
 */
export function serverKey(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * Why signing in at `url` would expose the person's tokens: plain http to another machine (the GitHub
 * token and the session would cross the network unencrypted); null when it is https or this machine.
 */
export function insecureSignIn(url: string): string | null {
  const u = new URL(url);
  if (u.protocol === 'https:') return null;
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(u.hostname);
  return u.protocol === 'http:' && loopback ? null
    : `${u.origin} is not https: signing in would send your GitHub sign-in and the session's tokens unencrypted. Use the server's https:// address`;
}

/** Exchanges a GitHub token (VS Code's GitHub account, the CLI's device flow) for an OdooOps session. */
export async function signInWithGitHub(url: string, githubToken: string, fetchImpl: typeof fetch = fetch): Promise<C.AuthSession> {
  const insecure = insecureSignIn(url);
  if (insecure) throw new CliError(insecure, EXIT.usage, 'Nothing was sent.');
  return C.AuthSession.parse(await post(fetchImpl, url, '/api/auth/github', { githubToken } satisfies z.infer<typeof C.GitHubSignIn>));
}

/**
 * Takes a Supabase Auth user in (a Supabase control plane): their GitHub identity as Supabase recorded
 * it, and the invitations it matches. `supabaseAccessToken` is the Supabase session's access token.
 */
export async function acceptSupabaseSignIn(url: string, supabaseAccessToken: string, fetchImpl: typeof fetch = fetch): Promise<C.AcceptedSignIn> {
  return C.AcceptedSignIn.parse(await post(fetchImpl, url, '/api/auth/accept', undefined, supabaseAccessToken));
}

async function post(fetchImpl: typeof fetch, url: string, path: string, body: unknown, bearer?: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetchImpl(new URL(path, url), {
      method: 'POST',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new CliError(`cannot reach the OdooOps server at ${url}: ${(err as Error).cause ?? (err as Error).message}`, EXIT.unreachable, 'Is the server running, and is the URL right?');
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    throw new CliError(`${url} answered ${res.status}, but not as an OdooOps server (no JSON)`, EXIT.unreachable, 'Check the server URL.');
  }
  if (res.ok) return json;
  const e = C.ApiError.safeParse(json);
  throw new CliError(e.success ? e.data.error.message : `HTTP ${res.status}`, res.status >= 500 ? EXIT.server : EXIT.rejected,
    e.success ? e.data.error.hint : undefined, e.success ? e.data.error.code : undefined);
}

/**
 * When the access token was issued and how long it lives, in ms, from its JWT (read without verifying:
 * the server verifies); expiresAt, which the server said, counts for when it expires.
 */
function lifetimeOf(s: StoredSession): { issued: number; lifetime: number } {
  const expires = Date.parse(s.expiresAt);
  try {
    const part = s.accessToken.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const { iat, exp } = JSON.parse(atob(part)) as { iat?: unknown; exp?: unknown };
    if (typeof iat === 'number' && typeof exp === 'number' && exp > iat) return { issued: iat * 1000, lifetime: (exp - iat) * 1000 };
  } catch {}
  return { issued: expires - 3_600_000, lifetime: 3_600_000 };
}

/**
 * When to try a failed background refresh again: doubling from 1 s to 5 minutes with ±20 % jitter (many
 * windows behind one address must not keep the server's per-address limit drained), at least a minute
 * after a 429, and, while the token still has time, before half of it is gone.
 */
export function retryDelay(failures: number, err: Error, remainingMs: number): number {
  let delay = Math.min(300_000, 1_000 * 2 ** Math.max(0, failures - 1)) * (0.8 + Math.random() * 0.4);
  if ((err as CliError).code === 'rate_limited') return Math.max(delay, 60_000);
  if (remainingMs > 2_000) delay = Math.min(delay, remainingMs / 2);
  return Math.max(1_000, delay);
}

export class SessionManager implements TokenSource {
  private readonly opts: SessionManagerOptions;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private current: StoredSession | undefined;
  private refreshing: Promise<StoredSession> | undefined;
  /** Background refreshes failed in a row (the server away, or limiting): they back off. */
  private failures = 0;
  private consumers = new Set<SessionConsumer>();
  private listeners = new Set<(session: StoredSession | undefined) => void>();
  private auto = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: SessionManagerOptions) {
    this.opts = opts;
    this.fetch = opts.fetch ?? ((...a) => fetch(...a));
    this.now = opts.now ?? Date.now;
  }

  get url(): string {
    return this.opts.url;
  }

  /** The session held now (undefined: not signed in). */
  get session(): StoredSession | undefined {
    return this.current;
  }

  /** Reads the stored session; undefined when there is none (or what is stored is not one). */
  async load(): Promise<StoredSession | undefined> {
    const stored = await this.opts.storage.load();
    const parsed = stored ? StoredSession.safeParse(stored) : undefined;
    this.adopt(parsed?.success ? parsed.data : undefined);
    return this.current;
  }

  /** A new sign-in's session: stored, and handed to the consumers. */
  async signIn(session: StoredSession): Promise<void> {
    const s = StoredSession.parse(session);
    await this.opts.storage.save(s);
    this.adopt(s);
  }

  /**
   * Hands every new token to `api` (and, when it takes one, makes it ask this session for a fresh token
   * before each request and renew once after a 401 token_expired). Returns how to detach.
   */
  attach(api: SessionConsumer): () => void {
    this.consumers.add(api);
    api.useSession?.(this);
    if (this.current) api.setToken(this.current.accessToken);
    return () => {
      this.consumers.delete(api);
      api.useSession?.(undefined);
    };
  }

  /** Called after every change: a refresh, a sign-in, a sign-out or a session that ended (undefined). */
  onChange(listener: (session: StoredSession | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** How long before expiry a token counts as too old to hand out: 60 s, or a fifth of a short lifetime. */
  private margin(s: StoredSession): number {
    return Math.min(60_000, lifetimeOf(s).lifetime / 5);
  }

  private fresh(s: StoredSession): boolean {
    return Date.parse(s.expiresAt) - this.now() > this.margin(s);
  }

  async token(): Promise<string> {
    const s = this.current ?? (await this.load());
    if (!s) throw new CliError('not signed in to this server', EXIT.rejected, SIGN_IN_AGAIN, SESSION_ENDED);
    return this.fresh(s) ? s.accessToken : (await this.refresh()).accessToken;
  }

  async renew(stale: string): Promise<string> {
    if (this.current && this.current.accessToken !== stale && this.fresh(this.current)) return this.current.accessToken;
    return (await this.refresh(stale)).accessToken;
  }

  /**
   * Refreshes now (one refresh at a time: callers that come while one runs share it). A process sharing
   * the storage may have refreshed already: its newer session is taken instead of refreshing again.
   * `stale`: an access token the server refused as expired, so a stored session with it is not fresh.
   */
  refresh(stale?: string): Promise<StoredSession> {
    this.refreshing ??= this.doRefresh(stale).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(stale?: string): Promise<StoredSession> {
    const stored = await this.opts.storage.load().catch(() => undefined);
    const held = this.current;
    if (stored && stored.refreshToken !== held?.refreshToken && stored.accessToken !== stale && this.fresh(stored)) {
      this.adopt(stored);
      return stored;
    }
    const presented = stored ?? held;
    if (!presented) throw new CliError('not signed in to this server', EXIT.rejected, SIGN_IN_AGAIN, SESSION_ENDED);
    let next: C.AuthSession;
    try {
      next = C.AuthSession.parse(await post(this.fetch, this.opts.url, '/api/auth/refresh', { refreshToken: presented.refreshToken } satisfies z.infer<typeof C.RefreshRequest>));
    } catch (err) {
      if (err instanceof CliError && err.exitCode === EXIT.rejected && ['session_ended', 'invalid_refresh_token'].includes(err.code ?? '')) {
        // Forget it, unless another sign-in replaced it in the storage meanwhile.
        const now = await this.opts.storage.load().catch(() => undefined);
        if (!now || now.refreshToken === presented.refreshToken) await this.opts.storage.clear().catch(() => {});
        this.adopt(undefined);
        throw new CliError(`signed out of ${this.opts.url}: ${err.message}`, EXIT.rejected, SIGN_IN_AGAIN, SESSION_ENDED);
      }
      throw err;
    }
    const s: StoredSession = { accessToken: next.accessToken, refreshToken: next.refreshToken, expiresAt: next.expiresAt, user: next.user };
    await this.opts.storage.save(s);
    this.adopt(s);
    return s;
  }

  /**
   * Refreshes in the background at ~80 % of each token's lifetime, so a long-lived process (the
   * extension) always holds a valid token and its Realtime channels get the new one before the old
   * expires. A failed attempt is tried again (sooner as expiry nears) until the session ends.
   */
  startAutoRefresh(): () => void {
    this.auto = true;
    this.arm();
    return () => this.stopAutoRefresh();
  }

  stopAutoRefresh(): void {
    this.auto = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs?: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.current;
    if (!this.auto || !s) return;
    const { issued, lifetime } = lifetimeOf(s);
    const due = delayMs ?? Math.min(issued + lifetime * 0.8, Date.parse(s.expiresAt) - lifetime * 0.2) - this.now();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().then(() => {
        this.failures = 0;
      }, (err: Error) => {
        this.opts.onRefreshError?.(err);
        this.failures++;
        if (this.current) this.arm(retryDelay(this.failures, err, Date.parse(this.current.expiresAt) - this.now()));
      });
    }, Math.min(Math.max(0, due), 2 ** 31 - 1));
    (this.timer as { unref?: () => void }).unref?.();
  }

  /**
   * Signs out: the server ends the session (its access and refresh tokens stop working), and it is
   * forgotten here whatever the server said. `revoked` false: the server could not be told (unreachable),
   * so its tokens stay valid until they expire; `error` says why.
   */
  async signOut(): Promise<{ revoked: boolean; error?: string }> {
    let result: { revoked: boolean; error?: string } = { revoked: false, error: 'not signed in' };
    if (this.current ?? (await this.load())) {
      try {
        await post(this.fetch, this.opts.url, '/api/auth/logout', undefined, await this.token());
        result = { revoked: true };
      } catch (err) {
        // A session the server already ended needs no revoking.
        result = err instanceof CliError && err.code === SESSION_ENDED ? { revoked: true } : { revoked: false, error: (err as Error).message };
      }
    }
    await this.opts.storage.clear();
    this.adopt(undefined);
    return result;
  }

  private adopt(s: StoredSession | undefined): void {
    const changed = s?.accessToken !== this.current?.accessToken;
    this.current = s;
    if (s) for (const c of this.consumers) c.setToken(s.accessToken);
    if (this.auto) this.arm();
    if (changed) for (const l of this.listeners) l(s);
  }
}
