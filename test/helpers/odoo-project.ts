// What the Odoo-operation tests share: a control plane and a Debian PostgreSQL 15 (started together), a
// password-protected Odoo role, generated Odoo-17-shaped databases with filestores, a project whose
// environments point at them, and the small helpers to queue a run, wait for its end and read it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type * as C from '../../contract/index.ts';
import type { GenerateOptions } from '../../server/odoo/generate.ts';
import type { ServerOptions } from '../../server/app.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './control-plane.ts';
import { createGeneratedOdooDb, createOdooRole, requirePasswordsOverTcp, startDebianPostgres, type DebianPostgres } from './debian-postgres.ts';

export const ODOO_ROLE = 'odoo';

export interface EnvSpec {
  name: string;
  stage: 'production' | 'staging' | 'development';
  db: string;
  url?: string;
}

export interface OdooProject {
  cp: TestControlPlane;
  odooPg: DebianPostgres;
  admin: TestUser;
  slug: string;
  password: string;
  passwordVar: string;
  scratch: string;
  /** The filestore directory of a database. */
  fs(db: string): string;
  /** Creates one more environment of the project (its database need not exist). */
  addEnv(spec: EnvSpec, overrides?: { passwordVar?: string; filestorePath?: string }): Promise<void>;
  queue(env: string, kind: string, params?: object, approvalId?: string): Promise<{ status: number; body: any }>;
  finished(id: number, timeoutMs?: number): Promise<C.Run>;
  /** Queues a run (asserting it was accepted) and waits for its end. */
  runToEnd(env: string, kind: string, params?: object, timeoutMs?: number): Promise<C.Run>;
  logText(id: number): Promise<string>;
  /** A query on the Odoo cluster as its superuser; no params: the simple protocol (several statements). */
  sql<T = any>(db: string, text: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export async function startOdooProject(opts: {
  slug: string;
  envs: EnvSpec[];
  /** Databases to generate before the environments are created. */
  generate: Record<string, GenerateOptions>;
  requirePasswords?: boolean;
  server?: Partial<ServerOptions>;
}): Promise<OdooProject> {
  const scratch = mkdtempSync(join(tmpdir(), `odooops-${opts.slug}-`));
  const password = `${opts.slug}-Pw-${process.pid}`;
  const passwordVar = `ODOOOPS_DB_TEST_${opts.slug.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${process.pid}`;
  let cp: TestControlPlane | undefined;
  let odooPg: DebianPostgres | undefined;
  const started = await Promise.allSettled([
    startControlPlane(opts.server).then((c) => (cp = c)),
    startDebianPostgres().then((p) => (odooPg = p)),
  ]);
  const fs = (db: string) => join(scratch, 'filestore', db);
  const close = async () => {
    delete process.env[passwordVar];
    await cp?.close();
    await odooPg?.stop();
    rmSync(scratch, { recursive: true, force: true });
  };
  for (const s of started) {
    if (s.status === 'rejected') {
      await close();
      throw s.reason;
    }
  }
  if (!cp || !odooPg) throw new Error('the control plane or the Odoo PostgreSQL did not start');
  const c = cp;
  const srv = odooPg;
  if (opts.requirePasswords !== false) await requirePasswordsOverTcp(srv);
  await createOdooRole(srv, ODOO_ROLE, password);
  for (const [db, gen] of Object.entries(opts.generate)) await createGeneratedOdooDb(srv, db, ODOO_ROLE, password, fs(db), gen);
  process.env[passwordVar] = password;
  const admin = await c.user();
  assert.equal((await admin.call('POST', '/api/projects', { slug: opts.slug, name: opts.slug })).status, 201);

  const p: OdooProject = {
    cp: c, odooPg: srv, admin, slug: opts.slug, password, passwordVar, scratch, fs, close,
    async addEnv(spec, overrides = {}) {
      const r = await admin.call('POST', `/api/projects/${opts.slug}/environments`, {
        name: spec.name, stage: spec.stage, ...(spec.url ? { url: spec.url } : {}), filestorePath: overrides.filestorePath ?? fs(spec.db),
        database: { name: spec.db, host: srv.host, port: srv.port, user: ODOO_ROLE, passwordRef: `env:${overrides.passwordVar ?? passwordVar}` },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    },
    queue: (env, kind, params = {}, approvalId) =>
      admin.call('POST', `/api/projects/${opts.slug}/environments/${env}/runs`, { kind, params, ...(approvalId ? { approvalId } : {}) }),
    finished: (id, timeoutMs = 120_000) =>
      eventually(`run ${id} to finish`, async () => {
        const run = (await admin.call('GET', `/api/runs/${id}`)).body as C.Run;
        return ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
      }, timeoutMs),
    async runToEnd(env, kind, params = {}, timeoutMs) {
      const q = await p.queue(env, kind, params);
      assert.equal(q.status, 201, JSON.stringify(q.body));
      return p.finished(q.body.id, timeoutMs);
    },
    logText: async (id) => ((await admin.call('GET', `/api/runs/${id}/logs?limit=5000`)).body as C.LogPage).lines.map((l) => l.line).join('\n'),
    async sql(db, text, params = []) {
      const client: pg.Client = await srv.client(db);
      try {
        return (params.length ? await client.query(text, params) : await client.query(text)).rows;
      } finally {
        await client.end();
      }
    },
  };
  for (const e of opts.envs) await p.addEnv(e);
  return p;
}
