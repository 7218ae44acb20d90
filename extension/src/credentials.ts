// Where the extension keeps what signing in gives it, one server at a time: VS Code's SecretStorage
// (the OS keychain), under a key per server URL, so a session for one server is never offered to
// another. Of an OdooOps session only the refresh token (and who it is) is stored; the access token
// lives in memory and is renewed from the refresh token when the extension starts again.
// No vscode import: unit-tested with a plain map as the secret store.
import * as C from '../../contract/index.ts';
import { serverKey, type SessionStorage, type StoredSession } from '../../client/session.ts';

export { insecureSignIn, serverKey } from '../../client/session.ts';

/** What the extension needs of vscode.SecretStorage. */
export interface Secrets {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

const REFRESH_PREFIX = 'odooops.session:';
const SUPABASE_PREFIX = 'odooops.supabase:';

/** What is kept of an OdooOps session: the refresh token and who signed in (never the access token). */
const Kept = C.AuthSession.pick({ refreshToken: true, user: true });

/** An expiry long past: a session read from storage has no access token yet, so its first use refreshes. */
const NO_ACCESS_TOKEN = new Date(0).toISOString();

/** The access tokens this extension host holds, by storage key (a reconnect to the same server reuses it). */
const inMemory = new Map<string, StoredSession>();

/**
 * The SessionStorage (client/session.ts) of one server's OdooOps session: the refresh token in
 * SecretStorage, the access token in memory. Another window that refreshed meanwhile left a newer
 * refresh token in SecretStorage; the session manager picks it up on its next refresh.
 */
export function refreshTokenStorage(secrets: Secrets, url: string): SessionStorage {
  const key = REFRESH_PREFIX + serverKey(url);
  return {
    async load() {
      const held = inMemory.get(key);
      const text = await secrets.get(key);
      if (!text) return undefined;
      let kept: ReturnType<typeof Kept.parse>;
      try {
        kept = Kept.parse(JSON.parse(text));
      } catch {
        // Not something this extension wrote: as if signed out (a new sign-in replaces it).
        return undefined;
      }
      if (held?.refreshToken === kept.refreshToken) return held;
      return { accessToken: '', expiresAt: NO_ACCESS_TOKEN, refreshToken: kept.refreshToken, user: kept.user };
    },
    async save(session) {
      inMemory.set(key, session);
      await secrets.store(key, JSON.stringify({ refreshToken: session.refreshToken, user: session.user }));
    },
    async clear() {
      inMemory.delete(key);
      await secrets.delete(key);
    },
  };
}

/**
 * The storage supabase-js's auth keeps its session and PKCE code verifier in (flowType 'pkce'): in
 * SecretStorage, under one server's prefix (its sign-out removes what it wrote).
 */
export function supabaseStorage(secrets: Secrets, url: string) {
  const prefix = `${SUPABASE_PREFIX}${serverKey(url)}:`;
  return {
    getItem: async (k: string): Promise<string | null> => (await secrets.get(prefix + k)) ?? null,
    setItem: async (k: string, v: string): Promise<void> => {
      await secrets.store(prefix + k, v);
    },
    removeItem: async (k: string): Promise<void> => {
      await secrets.delete(prefix + k);
    },
  };
}
