// Following a run's log from the CLI the way every viewer does: live announcements over Realtime
// (supabase-js made by client/realtime.ts, private topic run:<id>) merged with history pages from the
// API by sequence number, so each line is printed once and in order, even across a reconnect or a
// session refresh. Where Realtime cannot be joined (no gateway at that URL, a refused join) it falls
// back to reading the API every 300 ms.
import * as C from '../contract/index.ts';
import { LogSequencer } from '../contract/log-sequence.ts';
import { EXIT } from './api-client.ts';
import { connectRealtime, type RealtimeOptions } from './realtime.ts';
import type { SupabaseClient } from '@supabase/supabase-js';
/** What following needs of an API client (the CLI's ApiClient, the extension's Api). */
export interface LogSource {
  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T>;
  readonly target: { url: string; token: string };
  /** Renewed tokens (ApiClient.setToken): handed to the live channel so it outlives the old one. */
  onToken?(listener: (token: string) => void): () => void;
  /** A token valid for a while yet (ApiClient.bearer), asked on every Realtime heartbeat. */
  bearer?(): Promise<string>;
}

const TERMINAL = C.TERMINAL_STATUSES as readonly string[];

export type FollowState = 'live' | 'reconnecting';
export interface FollowOptions {
  /**
   * Told when the live connection drops ('reconnecting': the Realtime channel closed or errored, or a
   * history read failed) and when it is back ('live'). A caller that passes it is one that can show the
   * state, so a history read that fails for want of the server (unreachable, 5xx) is retried every
   * `retryMs` instead of ending the follow; without it, as before, such a failure is thrown.
   */
  onState?: (state: FollowState, detail?: string) => void;
  retryMs?: number;
  /** Stops following (the reader went away: a closed log panel); resolves with the last status read. */
  signal?: AbortSignal;
  /** How the Realtime client is made (another supabase-js version; the heartbeat interval). */
  realtime?: RealtimeOptions<SupabaseClient>;
}

/**
 * Prints the run's lines after `after` until it has finished; returns its final status (or, when
 * `signal` stops it first, the last status read).
 */
export async function followLogs(api: LogSource, id: number, after: number, out: (l: C.LogLine) => void, options: FollowOptions = {}): Promise<C.RunStatus> {
  return followSequenced<C.LogLine, C.RunStatus>(api, {
    topic: `run:${id}`,
    broadcast: C.LogBroadcast,
    page: async (from) => {
      const p = await api.get(`/api/runs/${id}/logs?after=${from}&limit=5000`, C.LogPage);
      return { lines: p.lines, full: p.lines.length >= 5000, state: p.status };
    },
    done: (status) => TERMINAL.includes(status),
  }, after, out, options);
}

/** How one kind of log is followed: its topic, its announcements, its pages by sequence number, its end. */
interface Sequenced<L extends { seq: number }, S> {
  topic: string;
  broadcast: { safeParse(v: unknown): { success: true; data: { last_seq: number; lines: L[] } } | { success: false } };
  /** The lines after `from`; full: more may follow at once; skipTo: lines before it are gone for good. */
  page(from: number): Promise<{ lines: L[]; full: boolean; state: S; skipTo?: number }>;
  done(state: S): boolean;
}

/**
 * The follower every log shares: history pages by sequence number merged with live announcements
 * (LogSequencer), the live channel's state told to onState, transient failures retried when the caller
 * can show them. Returns the state of the last page once done(state) or the signal stops it.
 */
async function followSequenced<L extends { seq: number }, S>(api: LogSource, spec: Sequenced<L, S>, after: number, out: (l: L) => void, options: FollowOptions): Promise<S> {
  const { onState, signal } = options;
  const seq = new LogSequencer<L>((lines) => lines.forEach(out), after);
  // The state last told to onState, so each change is told once.
  let told: FollowState = 'live';
  let channelDown = false;
  let fetchDown = false;
  // Once the follow has returned, nothing more is told (a late channel event must not say "live").
  let over = false;
  const tell = (detail?: string) => {
    const state: FollowState = channelDown || fetchDown ? 'reconnecting' : 'live';
    if (over || state === told) return;
    told = state;
    onState?.(state, detail);
  };
  const page = async () => {
    for (;;) {
      try {
        const p = await spec.page(seq.last);
        if (fetchDown) {
          fetchDown = false;
          tell();
        }
        return p;
      } catch (err) {
        if (!onState || !transient(err) || signal?.aborted) throw err;
        fetchDown = true;
        tell(`reading the log failed: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, options.retryMs ?? 2000));
      }
    }
  };
  const fill = async (): Promise<S> => {
    for (;;) {
      const p = await page();
      // Lines trimmed away (a window of recent lines, not the whole record) are not waited for.
      if (p.skipTo !== undefined && p.skipTo > seq.last + 1) seq.last = p.skipTo - 1;
      seq.accept(p.lines);
      if (!p.full) return p.state;
    }
  };

  // Where the server says Realtime is, with the session's token kept current (client/realtime.ts).
  const live = await connectRealtime(api, options.realtime);
  const { sb } = live;
  let wake: () => void = () => {};
  const channel = sb.channel(spec.topic, { config: { private: true } }).on('broadcast', { event: 'log' }, ({ payload }) => {
    const batch = spec.broadcast.safeParse(payload);
    if (batch.success) seq.acceptBroadcast(batch.data);
    // Each wake reads the API once: the lines a partial batch or a reconnect left out, and the run's
    // status (so the end is noticed at once). Announcements come at most 4 a second (the Realtime budget).
    wake();
  });
  let joinedOnce = false;
  const joined = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    channel.subscribe((status, err) => {
      // After the first join supabase-js rejoins by itself: a drop shows as CHANNEL_ERROR/TIMED_OUT (or
      // CLOSED), the rejoin as SUBSCRIBED again. The history read on rejoin fills what the drop lost.
      if (joinedOnce) {
        channelDown = status !== 'SUBSCRIBED';
        tell(channelDown ? `live connection ${status.toLowerCase().replace('_', ' ')}${err ? `: ${err.message}` : ''}` : undefined);
        if (!channelDown) wake();
        return;
      }
      if (status === 'CLOSED') return;
      clearTimeout(timer);
      joinedOnce = status === 'SUBSCRIBED';
      resolve(status === 'SUBSCRIBED');
    });
  });
  try {
    for (;;) {
      // History first (what happened before we joined, or a gap), then wait for live batches; the run's
      // status is re-read at most every 2 s while live lines flow, to notice the end.
      const state = await fill();
      if (spec.done(state) || signal?.aborted) return state;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, joined ? 2000 : 300);
        wake = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        signal?.addEventListener('abort', wake, { once: true });
      });
      if (signal?.aborted) return state;
    }
  } finally {
    // Closing the socket ends the subscription; an explicit leave would keep a 10 s reply timer alive.
    over = true;
    await live.close();
  }
}

/** What following an environment's Odoo log needs of an API client: reads, and the lease's renewal. */
export interface OdooLogSource extends LogSource {
  request<T>(method: string, path: string, schema: { parse(v: unknown): T }, body?: unknown): Promise<{ data: T }>;
}

/**
 * Follows the running Odoo's log of an environment (issue 17) from the line after `after` until `signal`
 * stops it: the same live announcements and gap fill as a run's log, on odoo-log:<environment id>, while
 * renewing the lease that keeps the worker tailing it (as on Odoo.sh, no follower, no tail). `after`
 * undefined starts with the last `tail` lines (100 by default). `level` shows that level and above only.
 * `onProblem` hears why nothing will come when the server can tell.
 */
export async function followOdooLog(api: OdooLogSource, project: string, env: string, out: (l: C.OdooLogLine) => void,
  options: FollowOptions & { after?: number; tail?: number; level?: C.OdooLogLevel; onProblem?: (problem: string) => void } = {}): Promise<void> {
  const { level } = options;
  const shown = level ? (l: C.OdooLogLine) => (C.atLeastLevel(l.level, level) ? out(l) : undefined) : out;
  const base = `/api/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(env)}`;
  const follow = async () => (await api.request('POST', `${base}/odoo-log/follow`, C.OdooLogFollow, {})).data;
  const lease = await follow();
  if (lease.problem) options.onProblem?.(lease.problem);
  let after = options.after;
  if (after === undefined) {
    // The last lines of that level and above (a traceback's lines carry its level: it stays whole).
    const start = await api.get(`${base}/odoo-log?tail=${options.tail ?? 100}${level ? `&level=${level}` : ''}`, C.OdooLogPage);
    start.lines.forEach(out);
    after = start.nextAfter;
  }
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // Renewed well before it lapses; a failed renewal is tried again at the next turn (the lease outlasts two).
  const renew = setInterval(() => void follow().catch(() => {}), lease.renewSeconds * 1000);
  try {
    await followSequenced<C.OdooLogLine, null>(api, {
      topic: `odoo-log:${lease.environmentId}`,
      broadcast: C.OdooLogBroadcast,
      page: async (from) => {
        const p = await api.get(`${base}/odoo-log?after=${from}&limit=5000`, C.OdooLogPage);
        return { lines: p.lines, full: p.lines.length >= 5000, state: null, ...(p.firstSeq !== null ? { skipTo: p.firstSeq } : {}) };
      },
      done: () => false,
    }, after, shown, { ...options, signal: stop.signal });
  } finally {
    clearInterval(renew);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** A failure worth retrying: the server unreachable or failing, not a refusal (auth, no such run). */
function transient(err: unknown): boolean {
  const code = (err as { exitCode?: number }).exitCode;
  return code === EXIT.unreachable || code === EXIT.server;
}
