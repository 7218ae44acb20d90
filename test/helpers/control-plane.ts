// A real control plane for tests: an embedded PostgreSQL in a temporary OdooOps directory, the
// migrations, the API and (unless turned off) a worker, all through startServer as in production.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { startServer, type RunningServer, type ServerOptions } from '../../server/app.ts';
import { signToken } from '../../server/auth/tokens.ts';
import { asUser } from '../../server/db/session.ts';
import { runUser } from '../../server/infra/run-user.ts';
import type { RegistryFile } from '../../server/infra/registry.ts';

/** An infrastructure registry as a test writes it (the file's shape; defaults may be left out). */
export type TestRegistry = { [K in keyof RegistryFile]?: Record<string, Record<string, unknown>> };

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
  /** A new user id with a signed token; instanceAdmin: they may create projects. */
  user(email?: string, opts?: { instanceAdmin?: boolean }): Promise<TestUser>;
  /** Rewrites the operator's registry file and has the server read it again (as SIGHUP does). */
  setInfra(registry: TestRegistry): Promise<void>;
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

/**
 * Without a registry of its own, a test's control plane has one database server every project may name,
 * where nothing listens: for tests whose runs never reach a database (the test.* executors).
 */
export const TEST_DB_SERVER = 'test-db';
const DEFAULT_REGISTRY: TestRegistry = { databaseServers: { [TEST_DB_SERVER]: { host: '127.0.0.1', port: 9, projects: ['*'] } } };

export async function startControlPlane(opts: Partial<ServerOptions> & { infra?: TestRegistry } = {}): Promise<TestControlPlane> {
  const home = tempHome();
  const { infra = DEFAULT_REGISTRY, ...serverOpts } = opts;
  writeFileSync(join(home, 'infrastructure.yaml'), JSON.stringify(infra, null, 2));
  // No daily schedule in tests unless a test asks (it would queue backups of every production environment).
  const server = await startServer({ home, fast: true, log: () => {}, leaseSeconds: 5, sweepIntervalMs: 1000, scheduleIntervalMs: 0, ...serverOpts });
  const makeUser = async (email?: string, o: { instanceAdmin?: boolean } = {}): Promise<TestUser> => {
    const id = randomUUID();
    const token = await signToken(server.secret, { sub: id, email: email ?? `${id.slice(0, 8)}@example.invalid` });
    if (o.instanceAdmin) await server.pool.query('insert into ops.instance_admins (user_id) values ($1)', [id]);
    return { id, token, call: (m, p, b, h) => call(server.url, token, m, p, b, h) };
  };
  return {
    server,
    home,
    pool: server.pool,
    user: makeUser,
    async setInfra(registry) {
      writeFileSync(join(home, 'infrastructure.yaml'), JSON.stringify(registry, null, 2));
      await server.reloadInfrastructure();
    },
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

/**
 * Hands a directory tree a test made (as root) to the server's run user, as an operator gives the Odoo
 * filestore to the user Odoo and OdooOps run as. Nothing to do when the tests do not run as root.
 */
export function chownToRunUser(dir: string): void {
  const u = runUser();
  if (u.switches) execFileSync('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
}

/** `count` consecutive TCP ports free on the loopback right now: the range a local runtime hands out. */
export async function freePortRange(count: number): Promise<[number, number]> {
  for (;;) {
    const first = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => new Promise<boolean>((r) => {
      const s = createServer().once('error', () => r(false)).listen(first + i, '127.0.0.1', () => s.close(() => r(true)));
    })));
    if (free.every(Boolean)) return [first, first + count - 1];
  }
}
