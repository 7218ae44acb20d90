// The control plane needs sessions of its own: the worker and the Realtime gateway LISTEN, and the
// migration runner holds a session advisory lock. A transaction pooler (Supabase's Supavisor on port
// 6543, PgBouncer with pool_mode = transaction) hands each transaction to whichever server connection is
// free, so a LISTEN hears nothing and a session lock stays with a connection the server no longer has:
// runs would wait for the 15 s sweep and the lock could leak. So a server refuses such a URL at start.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const SESSION_ADVICE =
  'Use the direct connection (postgres://postgres:<password>@db.<ref>.supabase.co:5432/postgres) or the session pooler ' +
  '(the same pooler host on port 5432), or PgBouncer with pool_mode = session, and start OdooOps again.';

export class TransactionPoolerError extends Error {
  /** The message without the advice, and the advice: what to do instead. */
  readonly reason: string;
  readonly hint = SESSION_ADVICE;
  constructor(why: string) {
    const reason = `${why}. OdooOps needs sessions of its own (its worker and Realtime gateway LISTEN, its migrations hold a session lock), which a transaction pooler does not keep`;
    super(`${reason}. ${SESSION_ADVICE}`);
    this.reason = reason;
  }
}

/** What the URL alone says: Supabase's transaction pooler is <region>.pooler.supabase.com on port 6543. */
export function transactionPoolerHint(databaseUrl: string): string | null {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return null; // a key=value connection string: the probe decides
  }
  if (/(^|\.)pooler\.supabase\.com$/i.test(url.hostname) && url.port === '6543') {
    return `${url.hostname}:6543 is Supabase's transaction pooler`;
  }
  return null;
}

/**
 * Refuses a database URL that goes through a transaction pooler: by its Supabase address, else by a
 * LISTEN/NOTIFY round trip between two connections (what the worker and the gateway rely on). Through a
 * session (a direct connection, a session pooler) the notification arrives in milliseconds; through a
 * transaction pooler the listening session is gone once its LISTEN's transaction ends, so it never does.
 */
export async function assertSessionConnection(databaseUrl: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const hint = transactionPoolerHint(databaseUrl);
  if (hint) throw new TransactionPoolerError(hint);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const listener = new pg.Client({ connectionString: databaseUrl, application_name: 'odooops-session-check' });
  const sender = new pg.Client({ connectionString: databaseUrl, application_name: 'odooops-session-check' });
  listener.on('error', () => {});
  sender.on('error', () => {});
  try {
    await listener.connect();
    await sender.connect();
    const channel = `odooops_session_check_${randomBytes(8).toString('hex')}`;
    let timer: NodeJS.Timeout | undefined;
    const arrived = new Promise<boolean>((resolve) => {
      listener.on('notification', (n) => n.channel === channel && resolve(true));
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    let ok: boolean;
    try {
      await listener.query(`listen ${pg.escapeIdentifier(channel)}`);
      await sender.query('select pg_notify($1, $2)', [channel, 'probe']);
      ok = await arrived;
    } finally {
      clearTimeout(timer); // a LISTEN or NOTIFY that throws must not hold the start for the timeout
    }
    if (!ok) {
      throw new TransactionPoolerError(
        `a notification sent on one connection did not reach another that was listening (${timeoutMs / 1000} s): the database URL goes through a transaction pooler`,
      );
    }
    await listener.query(`unlisten ${pg.escapeIdentifier(channel)}`);
  } finally {
    await Promise.all([listener.end().catch(() => {}), sender.end().catch(() => {})]);
  }
}
