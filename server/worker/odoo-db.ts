// How a worker reaches an environment's Odoo database: with the connection the operator's registry
// gives for the environment's database server (server/infra), never with anything stored on the row.
import pg from 'pg';
import type { PgTarget } from '../odoo/pg-tools.ts';

/** Opens a connection to the environment's database that closes when the run is aborted. */
export async function connectOdoo(target: PgTarget, signal: AbortSignal): Promise<pg.Client> {
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: target.password,
    connectionTimeoutMillis: 10_000,
    application_name: 'odooops',
  });
  client.on('error', () => {});
  const onAbort = () => void client.end().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
  } catch (err) {
    signal.removeEventListener('abort', onAbort);
    throw new Error(`cannot connect to the Odoo database ${target.database}: ${(err as Error).message}`);
  }
  return client;
}
