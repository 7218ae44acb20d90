// Signing in to a Supabase control plane (Health.auth.supabase): Supabase Auth's GitHub provider with
// PKCE. supabase-js makes the code verifier and keeps it (with the session) in the storage it is given
// (SecretStorage, credentials.ts); the browser comes back to the extension's URI handler with a code that
// only that verifier can exchange, so a code someone else sends to the handler is worth nothing.
// supabase-js then refreshes the session by itself; every new access token goes to the API client
// (and from there to live Realtime channels). The OdooOps server takes the person in with
// POST /api/auth/accept (client/session.ts). No vscode import: tested against a GoTrue test double.
import { createClient, type Session, type SupabaseClient } from '@supabase/supabase-js';
import * as C from '../../contract/index.ts';
import { CliError, EXIT } from '../../client/api-client.ts';
import { SESSION_ENDED, acceptSupabaseSignIn, type SessionConsumer, type TokenSource } from '../../client/session.ts';

export interface KeyValueStorage {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

/** What the extension asks GitHub for through Supabase: who you are and your verified email. */
export const SUPABASE_GITHUB_SCOPES = 'read:user user:email';

const SIGN_IN_AGAIN = 'Run "OdooOps: Sign in" again.';

export class SupabaseSignIn implements TokenSource {
  readonly serverUrl: string;
  private readonly client: SupabaseClient;
  private readonly consumers = new Set<SessionConsumer>();
  private readonly listeners = new Set<(session: Session | null) => void>();
  private current: Session | null = null;
  private readonly unsubscribe: () => void;

  constructor(serverUrl: string, config: NonNullable<C.Health['auth']['supabase']>, storage: KeyValueStorage) {
    this.serverUrl = serverUrl;
    this.client = createClient(config.url, config.anonKey, {
      auth: { flowType: 'pkce', storage, persistSession: true, autoRefreshToken: true, detectSessionInUrl: false },
    });
    const { data } = this.client.auth.onAuthStateChange((event, session) => {
      this.current = session;
      // TOKEN_REFRESHED: supabase-js renewed the session before expiry; later requests and live
      // channels must carry the new token before the old one expires.
      if (session) for (const c of this.consumers) c.setToken(session.access_token);
      if (event === 'SIGNED_OUT' || session) for (const l of this.listeners) l(session);
    });
    this.unsubscribe = () => data.subscription.unsubscribe();
  }

  /** The stored session (refreshed first when it is about to expire), or null when signed out. */
  async load(): Promise<Session | null> {
    const { data, error } = await this.client.auth.getSession();
    if (error) throw new CliError(`the Supabase session could not be read: ${error.message}`, EXIT.rejected, SIGN_IN_AGAIN, SESSION_ENDED);
    this.current = data.session;
    return data.session;
  }

  get session(): Session | null {
    return this.current;
  }

  /**
   * Where to send the browser: Supabase Auth's GitHub sign-in, coming back to `redirectTo` (the
   * extension's URI handler, as VS Code makes it reachable from a browser) with a code.
   */
  async authorizeUrl(redirectTo: string): Promise<string> {
    const { data, error } = await this.client.auth.signInWithOAuth({ provider: 'github', options: { redirectTo, skipBrowserRedirect: true, scopes: SUPABASE_GITHUB_SCOPES } });
    if (error || !data.url) throw new CliError(`Supabase Auth could not start the GitHub sign-in: ${error?.message ?? 'no URL'}`, EXIT.server);
    return data.url;
  }

  /** The browser came back: exchanges its code (with the verifier only this client holds) for a session. */
  async complete(callback: URL): Promise<Session> {
    // GoTrue says why it did not sign you in (e.g. you cancelled at GitHub) in the query or the fragment.
    const fragment = new URLSearchParams(callback.hash.replace(/^#/, ''));
    const failed = callback.searchParams.get('error_description') ?? fragment.get('error_description') ?? callback.searchParams.get('error') ?? fragment.get('error');
    if (failed) throw new CliError(`GitHub sign-in through Supabase failed: ${failed}`, EXIT.rejected, SIGN_IN_AGAIN);
    const code = callback.searchParams.get('code');
    if (!code) throw new CliError('the sign-in came back without a code', EXIT.rejected, SIGN_IN_AGAIN);
    const { data, error } = await this.client.auth.exchangeCodeForSession(code);
    if (error || !data.session) {
      throw new CliError(`Supabase Auth refused the sign-in: ${error?.message ?? 'no session'}`, EXIT.rejected,
        'A sign-in completes only in the VS Code window that started it, once. ' + SIGN_IN_AGAIN);
    }
    this.current = data.session;
    return data.session;
  }

  /** The OdooOps server takes the Supabase user in: their GitHub identity, and the invitations it matches. */
  accept(session: Session = this.current!): Promise<C.AcceptedSignIn> {
    return acceptSupabaseSignIn(this.serverUrl, session.access_token);
  }

  /** Hands every new access token to `api`, and makes it ask for a fresh one before each request. */
  attach(api: SessionConsumer): () => void {
    this.consumers.add(api);
    api.useSession?.(this);
    if (this.current) api.setToken(this.current.access_token);
    return () => {
      this.consumers.delete(api);
      api.useSession?.(undefined);
    };
  }

  /** Told of every new session (a refresh) and of the end of one (null). */
  onChange(listener: (session: Session | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async token(): Promise<string> {
    // Held in memory while it has a minute left; else supabase-js reads its storage and refreshes.
    const held = this.current;
    if (held?.expires_at && held.expires_at * 1000 - Date.now() > 60_000) return held.access_token;
    const s = await this.load();
    if (!s) throw new CliError('not signed in to this server', EXIT.rejected, SIGN_IN_AGAIN, SESSION_ENDED);
    return s.access_token;
  }

  async renew(stale: string): Promise<string> {
    if (this.current && this.current.access_token !== stale) return this.current.access_token;
    const { data, error } = await this.client.auth.refreshSession();
    if (error || !data.session) throw new CliError(`the Supabase session ended: ${error?.message ?? 'signed out'}`, EXIT.rejected, SIGN_IN_AGAIN, SESSION_ENDED);
    return data.session.access_token;
  }

  /** Ends the session at Supabase (every refresh token of it stops working) and forgets it here. */
  async signOut(): Promise<{ revoked: boolean; error?: string }> {
    const { error } = await this.client.auth.signOut();
    // supabase-js forgets the local session even when Supabase could not be told.
    return error ? { revoked: false, error: error.message } : { revoked: true };
  }

  dispose(): void {
    this.unsubscribe();
    void this.client.auth.stopAutoRefresh();
    this.consumers.clear();
    this.listeners.clear();
  }
}
