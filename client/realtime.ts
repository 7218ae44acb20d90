// The one way OdooOps makes a supabase-js client for Realtime (the log follower, the extension's project
// feed, the benchmark, the tests), so that it works the same on every supabase-js the project supports
// (2.109 to the newest 2.x) and stays joined across a session refresh.
//
// Since 2.112.1 supabase-js hands realtime-js an accessToken callback of its own, which without a
// session returns the apikey: a client that only called realtime.setAuth(token) then sends the apikey
// as access_token after each join and on every heartbeat, and loses its user. What works on 2.109 and
// on 2.119 (read in their realtime-js sources): createClient(url, key, { accessToken }) with our own
// callback, then `await realtime.setAuth()` with no argument before subscribing. The no-argument call
// puts the client in callback mode (2.109's constructor had just put it in manual mode with the
// callback's first token, and heartbeats refresh only in callback mode) and sets the token the joins
// carry (a join takes whatever token the client holds at subscribe time). From then on realtime-js
// calls the callback again on every heartbeat (25 s) and pushes `access_token` to every joined channel
// when the answer changed; a renewed session (ApiClient.setToken) is pushed at once through onToken,
// so the gateway (or Supabase) has the new token long before the old one expires.
import type { SupabaseClient } from '@supabase/supabase-js';
import * as C from '../contract/index.ts';

/** Where the user's token is: read afresh each time, and told when it is renewed (ApiClient). */
export interface TokenHolder {
  readonly target: { token: string };
  onToken?(listener: (token: string) => void): () => void;
  /**
   * A token valid for a while yet (ApiClient.bearer: a signed-in session refreshes first when its token
   * is about to expire). Asked on every heartbeat, so a channel outlives its token even when nothing
   * else asks the session (a project feed that reads nothing for an hour).
   */
  bearer?(): Promise<string>;
}

/** What the server tells clients about Realtime comes from here (GET /api/health). */
export interface RealtimeApi extends TokenHolder {
  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T>;
  readonly target: { url: string; token: string };
}

/** The options this module passes to createClient (a subset every supported version takes). */
export interface ClientOptions {
  accessToken: () => Promise<string>;
  auth: { persistSession: boolean; autoRefreshToken: boolean; detectSessionInUrl: boolean };
  realtime?: { heartbeatIntervalMs?: number };
}

/** The part of a supabase-js client this module touches; every supported version has it. */
export interface RealtimeCapable {
  realtime: { setAuth(token?: string | null): Promise<void>; disconnect(): Promise<unknown> | unknown };
}

export type CreateClient<T extends RealtimeCapable> = (url: string, key: string, options: ClientOptions) => T;

export interface RealtimeOptions<T extends RealtimeCapable> {
  /** Another supabase-js's createClient (the tests pass the oldest supported version's). */
  createClient?: CreateClient<T>;
  /** realtime-js's heartbeat interval (25 s by default): each heartbeat reads the token again. */
  heartbeatIntervalMs?: number;
}

export interface LiveClient<T> {
  sb: T;
  /** Stops listening for new tokens and closes the socket (which ends every channel on it). */
  close(): Promise<void>;
}

export async function realtimeClient<T extends RealtimeCapable = SupabaseClient>(
  url: string, apiKey: string, tokens: TokenHolder, options: RealtimeOptions<T> = {},
): Promise<LiveClient<T>> {
  // Loaded here, not at start: the CLI's other commands (and dev containers' older Node) never need it.
  const create = options.createClient ?? ((await import('@supabase/supabase-js')).createClient as unknown as CreateClient<T>);
  const sb = create(url, apiKey, {
    // A failing bearer() (the session ended) is caught by realtime-js, which keeps the token it has.
    accessToken: async () => (tokens.bearer ? await tokens.bearer() : tokens.target.token),
    // Unused with accessToken (supabase-js then builds no auth client), said anyway: no session storage.
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(options.heartbeatIntervalMs ? { realtime: { heartbeatIntervalMs: options.heartbeatIntervalMs } } : {}),
  });
  await sb.realtime.setAuth();
  const stop = tokens.onToken?.(() => {
    sb.realtime.setAuth().catch(() => {}); // a failed read keeps the token the channels have
  });
  return {
    sb,
    close: async () => {
      stop?.();
      await sb.realtime.disconnect();
    },
  };
}

/** A client for wherever the server says Realtime is: a Supabase project, or its own gateway (url null). */
export async function connectRealtime<T extends RealtimeCapable = SupabaseClient>(api: RealtimeApi, options: RealtimeOptions<T> = {}): Promise<LiveClient<T>> {
  const { realtime } = await api.get('/api/health', C.Health);
  return realtimeClient(realtime.url ?? api.target.url, realtime.apiKey, api, options);
}
