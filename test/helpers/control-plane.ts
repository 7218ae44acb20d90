// A real control plane for tests: an embedded PostgreSQL in a temporary OdooOps directory, the
// migrations, the API and (unless turned off) a worker, all through startServer as in production.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { startServer, type RunningServer, type ServerOptions } from '../../server/app.ts';
import { signToken } from '../../server/auth/tokens.ts';
import { asUser } from '../../server/db/session.ts';

export function tempHome(prefix = 'odooops-test-'): string {
  const home = mkdtempSync(join(tmpdir(), prefix));
  // The embedded cluster runs as the postgres OS user when tests run as root: it must reach the dir.
  chmodSync(home, 0o755);
  return home;
}

export interface TestControlPlane {
  server: RunningServer;
  home: string;
  pool: pg.Pool;
  /** A new user id with a signed token. */
  user(email?: string): Promise<TestUser>;
  /** Runs SQL as a user, through the same path the API uses (role authenticated + claims). */
  sql<T>(user: TestUser, fn: (c: pg.PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface TestUser {
  id: string;
  token: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
}

export async function call(baseUrl: string, token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, baseUrl), {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function startControlPlane(opts: Partial<ServerOptions> = {}): Promise<TestControlPlane> {
  const home = tempHome();
  // No daily schedule in tests unless a test asks (it would queue backups of every production environment).
  const server = await startServer({ home, fast: true, log: () => {}, leaseSeconds: 5, sweepIntervalMs: 1000, scheduleIntervalMs: 0, ...opts });
  const makeUser = async (email?: string): Promise<TestUser> => {
    const id = randomUUID();
    const token = await signToken(server.secret, { sub: id, email: email ?? `${id.slice(0, 8)}@example.invalid` });
    return { id, token, call: (m, p, b, h) => call(server.url, token, m, p, b, h) };
  };
  return {
    server,
    home,
    pool: server.pool,
    user: makeUser,
    sql: (user, fn) => asUser(server.pool, { sub: user.id, role: 'authenticated' }, fn),
    async close() {
      await server.stop(2000);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Creates a project owned by `admin` and environments in it, directly in SQL (fast test set-up). */
export async function seedProject(
  pool: pg.Pool,
  admin: string,
  slug: string,
  envs: { name: string; stage: 'production' | 'staging' | 'development'; db?: string }[],
): Promise<{ projectId: string; envIds: Record<string, string> }> {
  const { rows } = await pool.query('insert into ops.projects (slug, name, created_by) values ($1, $1, $2) returning id', [slug, admin]);
  const projectId = rows[0].id as string;
  const envIds: Record<string, string> = {};
  for (const e of envs) {
    const r = await pool.query('insert into ops.environments (project_id, name, stage, db_name) values ($1, $2, $3, $4) returning id', [
      projectId, e.name, e.stage, e.db ?? `odoo_${slug.replaceAll('-', '_')}_${e.name.replaceAll('-', '_')}`,
    ]);
    envIds[e.name] = r.rows[0].id;
  }
  return { projectId, envIds };
}

export async function addMember(pool: pg.Pool, projectId: string, userId: string, role: string) {
  await pool.query('insert into ops.project_members (project_id, user_id, role) values ($1, $2, $3)', [projectId, userId, role]);
}

/** Waits until fn returns a truthy value, or fails with `what` after timeoutMs. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
