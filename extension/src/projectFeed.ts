// What changes in the user's projects, as it happens: one private Realtime channel per project
// (project:<uuid>; events 'run' and 'approval', ids only: the details are read through the API; 'alert'
// carries its message, shown as it comes). After
// a drop supabase-js rejoins by itself; what changed meanwhile was not broadcast to anyone, so a rejoin
// reads the project's recent runs and approvals again (the same gap fill the log follower does).
// No vscode import: tested against a real server and gateway.
import * as C from '../../contract/index.ts';
import type { ApiClient } from '../../client/api-client.ts';
import { connectRealtime } from '../../client/realtime.ts';

export type FeedState = 'live' | 'reconnecting';

export interface FeedHandlers {
  run(run: C.Run): void;
  approval(project: string, id: string, status: string): void;
  /** An alert of the project (contract AlertBroadcast), as broadcast. */
  alert?(project: string, payload: unknown): void;
  /** A mail caught for one of the project's environments (contract MailBroadcast: ids only). */
  mail?(project: string, payload: C.MailBroadcast): void;
  /** After a drop: read again whatever the project may have missed. */
  /** The project's topic was joined (first time or again): read what may have changed unheard. */
  rejoined(project: string): Promise<void>;
  state(state: FeedState, detail?: string): void;
}

export async function followProjects(api: Pick<ApiClient, 'get' | 'target'> & Partial<Pick<ApiClient, 'onToken' | 'bearer'>>, projects: Pick<C.Project, 'id' | 'slug'>[], h: FeedHandlers): Promise<() => Promise<void>> {
  // A renewed session reaches the channels through onToken (client/realtime.ts).
  const live = await connectRealtime(api);
  const { sb } = live;
  const down = new Set<string>();
  let closing = false;
  // One read of a run at a time: a run's events come in bursts (queued, running, failed within
  // milliseconds), and answers of concurrent reads arrive in any order, so an older state could land
  // last and stay. An event during a read marks the run to be read again once that read is done.
  const reading = new Map<number, boolean>();
  const readRun = (id: number) => {
    if (reading.has(id)) return void reading.set(id, true);
    reading.set(id, false);
    void api.get(`/api/runs/${id}`, C.Run).then(h.run, () => {}).finally(() => {
      const again = reading.get(id);
      reading.delete(id);
      if (again && !closing) readRun(id);
    });
  };
  const channels = projects.map((p) => {
    let joined = false;
    return sb.channel(`project:${p.id}`, { config: { private: true } })
      .on('broadcast', { event: 'run' }, ({ payload }) => {
        const id = Number((payload as { id?: number }).id);
        if (id > 0) readRun(id);
      })
      .on('broadcast', { event: 'approval' }, ({ payload }) => {
        const { id, status } = payload as { id?: string; status?: string };
        if (id) h.approval(p.slug, id, status ?? '');
      })
      .on('broadcast', { event: 'alert' }, ({ payload }) => h.alert?.(p.slug, payload))
      .on('broadcast', { event: 'mail' }, ({ payload }) => {
        const m = C.MailBroadcast.safeParse(payload);
        if (m.success) h.mail?.(p.slug, m.data);
      })
      .subscribe((status, err) => {
        if (closing) return;
        if (status === 'SUBSCRIBED') {
          // Read again on every join, the first too: a run that changed between the caller's load and this
          // join was broadcast to no one (subscribe, then read, as Supabase advises).
          void h.rejoined(p.slug).catch(() => {});
          joined = true;
          if (down.delete(p.slug) && down.size === 0) h.state('live');
        } else if (joined && !down.has(p.slug)) {
          down.add(p.slug);
          h.state('reconnecting', `${status.toLowerCase().replace('_', ' ')}${err ? `: ${err.message}` : ''}`);
        }
      });
  });
  return async () => {
    closing = true;
    for (const c of channels) await sb.removeChannel(c);
    await live.close();
  };
}
