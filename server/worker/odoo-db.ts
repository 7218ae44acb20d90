// How a worker reaches an environment's Odoo database. The control plane stores only a reference to
// the password (env:NAME or file:/path), resolved here on the worker's machine.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { EnvironmentRow } from './executor.ts';

export function resolvePassword(ref: string | null): string | undefined {
  if (!ref) return undefined;
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = process.env[name];
    if (value === undefined) throw new Error(`the database password is expected in environment variable ${name} on the worker, which is not set`);
    return value;
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    try {
      return readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw new Error(`the database password file ${path} cannot be read on the worker: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  throw new Error(`unknown password reference "${ref.split(':')[0]}:"; use env:NAME or file:/path`);
}

export function odooConnectionConfig(env: EnvironmentRow): pg.ClientConfig {
  return {
    host: env.db_host ?? undefined,
    port: env.db_port ?? undefined,
    database: env.db_name,
    user: env.db_user ?? undefined,
    password: resolvePassword(env.db_password_ref),
    connectionTimeoutMillis: 10_000,
    application_name: 'odooops',
  };
}

export function describeConnection(env: EnvironmentRow): string {
  return `${env.db_user ?? '(default user)'}@${env.db_host ?? '(default host)'}:${env.db_port ?? 5432}/${env.db_name}`;
}

/** Opens a connection to the environment's database that closes when the run is aborted. */
export async function connectOdoo(env: EnvironmentRow, signal: AbortSignal): Promise<pg.Client> {
  const client = new pg.Client(odooConnectionConfig(env));
  client.on('error', () => {});
  const onAbort = () => void client.end().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
  } catch (err) {
    signal.removeEventListener('abort', onAbort);
    throw new Error(`cannot connect to the Odoo database ${describeConnection(env)}: ${(err as Error).message}`);
  }
  return client;
}
