// The mail catcher in the tree: each staging or development environment has a "Mail (N)" node whose
// children are the mails the catcher holds for it, newest first. An environment's list is read when its
// node is first drawn and again when the project's Realtime topic says a mail arrived there (event
// 'mail', ids only): the tree changes as mail comes, without polling, and the broadcast is bounded by
// the catcher's per-environment rate limit. No vscode import: unit-tested alone.
import * as C from '../../contract/index.ts';
import { relativeTime } from './labels.ts';

export interface MailApi {
  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T>;
}

export const mailKey = (slug: string, env: string) => `mail:${slug}/${env}`;
/** How many mails a node lists (the API's limit is 200). */
export const MAILS_LISTED = 100;

export class MailBox {
  private readonly lists = new Map<string, C.CaughtMailList>();
  private readonly errors = new Map<string, string>();
  private readonly loading = new Map<string, Promise<C.CaughtMailList>>();
  private readonly listeners = new Set<(keys: string[]) => void>();
  private readonly api: () => MailApi;

  constructor(api: () => MailApi) {
    this.api = api;
  }

  onDidChange(fn: (keys: string[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private fire(key: string) {
    for (const l of this.listeners) l([key]);
  }

  /** What the catcher holds for the environment, as last read (undefined: not read yet). */
  list(slug: string, env: string): C.CaughtMailList | undefined {
    return this.lists.get(mailKey(slug, env));
  }

  error(slug: string, env: string): string | undefined {
    return this.errors.get(mailKey(slug, env));
  }

  /** Reads the environment's mails (one read at a time per environment); tells the tree when done. */
  load(slug: string, env: string): Promise<C.CaughtMailList> {
    const key = mailKey(slug, env);
    const running = this.loading.get(key);
    if (running) return running;
    const p = this.api().get(`/api/projects/${encodeURIComponent(slug)}/environments/${encodeURIComponent(env)}/mails?limit=${MAILS_LISTED}`, C.CaughtMailList)
      .then((list) => {
        this.lists.set(key, list);
        this.errors.delete(key);
        return list;
      }, (err: Error) => {
        this.errors.set(key, err.message);
        throw err;
      })
      .finally(() => {
        this.loading.delete(key);
        this.fire(key);
      });
    this.loading.set(key, p);
    return p;
  }

  /**
   * A mail arrived (the project's 'mail' broadcast names the environment by id): read that environment's
   * list again if it was read before (one never looked at is read when its node is drawn).
   */
  arrived(slug: string, envName: string | undefined): void {
    if (!envName || !this.lists.has(mailKey(slug, envName))) return;
    void this.load(slug, envName).catch(() => {});
  }

  /** Forgets every list (a new connection, another server). */
  reset(): void {
    const keys = [...this.lists.keys()];
    this.lists.clear();
    this.errors.clear();
    for (const k of keys) this.fire(k);
  }
}

/** The node's label: "Mail (12)", "Mail" before the first read. */
export function mailNodeLabel(list: C.CaughtMailList | undefined): string {
  return list ? `Mail (${list.total})` : 'Mail';
}

/** One mail in the tree: its subject (or "(no subject)") and "from · 5 min ago". */
export function mailItemText(m: C.CaughtMail, now = Date.now()): { label: string; description: string; tooltip: string } {
  const label = m.subject.replace(/\s+/g, ' ').trim() || '(no subject)';
  return {
    label,
    description: `${m.from.replace(/\s+/g, ' ')} · ${relativeTime(m.receivedAt, now)}`,
    tooltip: `${label}\nfrom ${m.from}\nto ${m.to}\nreceived ${m.receivedAt}${m.attachments ? `\n${m.attachments} attachment(s)` : ''}`,
  };
}
