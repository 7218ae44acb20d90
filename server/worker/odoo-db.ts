// How a worker reaches an environment's Odoo database. The control plane stores only a reference to
// the password, resolved here on the worker's machine, and only within narrow bounds: a member who may
// edit an environment must not be able to make the worker send its other secrets (the JWT secret, the
// control-plane password) to a database host of their choosing.
import { readFileSync, realpathSync } from 'node:fs';
import { sep } from 'node:path';
import pg from 'pg';
import type { EnvironmentRow } from './executor.ts';

export const ENV_PREFIX = 'ODOOOPS_DB_';

export function resolvePassword(ref: string | null, secretsDirs: string[]): string | undefined {
  if (!ref) return undefined;
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    if (!name.startsWith(ENV_PREFIX)) throw new Error(`password environment variables must be named ${ENV_PREFIX}*, not ${name}`);
    const value = process.env[name];
    if (value === undefined) throw new Error(`the database password is expected in environment variable ${name} on the worker, which is not set`);
    return value;
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    let real: string;
    try {
      real = realpathSync(path);
    } catch (err) {
      throw new Error(`the database password file ${path} cannot be read on the worker: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const allowed = secretsDirs.some((dir) => {
      try {
        return real.startsWith(realpathSync(dir) + sep);
      } catch {
        return false;
      }
    });
    if (!allowed) {
      throw new Error(`the database password file ${path} is outside this worker's secrets directories (${secretsDirs.join(', ') || 'none'}); put it there or use --secrets-dir`);
    }
    return readFileSync(real, 'utf8').trim();
  }
  throw new Error(`unknown password reference "${ref.split(':')[0]}:"; use env:${ENV_PREFIX}NAME or file:/path`);
}

export function describeConnection(env: EnvironmentRow): string {
  return `${env.db_user ?? '(default user)'}@${env.db_host ?? '(default host)'}:${env.db_port ?? 5432}/${env.db_name}`;
}

/** Opens a connection to the environment's database that closes when the run is aborted. */
export async function connectOdoo(env: EnvironmentRow, signal: AbortSignal, resolveSecret: (ref: string | null) => string | undefined): Promise<pg.Client> {
  const client = new pg.Client({
    host: env.db_host ?? undefined,
    port: env.db_port ?? undefined,
    database: env.db_name,
    user: env.db_user ?? undefined,
    password: resolveSecret(env.db_password_ref),
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
    throw new Error(`cannot connect to the Odoo database ${describeConnection(env)}: ${(err as Error).message}`);
  }
  return client;
}
