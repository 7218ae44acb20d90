import pg from 'pg';
import { SERVICE_USER_ID } from '../../contract/index.ts';

// bigint ids (runs.id, log seq) fit comfortably in a JS number for this product's scale.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Claims = { sub: string; role: string; email?: string | null; [k: string]: unknown };
/** OdooOps acting as itself (webhooks, the schedule, the demo's set-up). */
export const SERVICE_CLAIMS: Claims = { sub: SERVICE_USER_ID, role: 'service_role' };

export function createPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'odooops' });
  // An idle client losing its connection must not take the process down; the pool replaces it.
  pool.on('error', () => {});
  return pool;
}

/**
 * Runs fn in a transaction as the calling user, the way PostgREST does: SET LOCAL ROLE to the token's
 * role and the claims in request.jwt.claims, so row level security decides what the user sees.
 */
export async function asUser<T>(pool: pg.Pool, claims: Claims, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const role = claims.role === 'service_role' ? 'service_role' : 'authenticated';
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(`select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)`, [
      role,
      JSON.stringify(claims),
    ]);
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
