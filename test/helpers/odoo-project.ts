// What the Odoo-operation tests share: a control plane and a Debian PostgreSQL 15 (started together), a
// password-protected Odoo role, generated Odoo-17-shaped databases with filestores, the operator's
// registry naming that server ("odoo-pg", its password in an environment variable) and the filestore
// root ("files"), a project whose environments point at them, and the small helpers to queue a run, wait
// for its end and read it.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type * as C from '../../contract/index.ts';
import type { GenerateOptions } from '../../server/odoo/generate.ts';
import type { ServerOptions } from '../../server/app.ts';
import { eventually, chownToRunUser, startControlPlane, type TestControlPlane, type TestRegistry, type TestUser } from './control-plane.ts';
import { realOdooSource, type SourceKind } from './odoo-sources.ts';
import { installOdoo } from './real-odoo.ts';
import { createGeneratedOdooDb, createOdooRole, requirePasswordsOverTcp, startDebianPostgres, type DebianPostgres } from './debian-postgres.ts';

export const ODOO_ROLE = 'odoo';
/** The registry's names for the Odoo cluster and the filestore root the helper sets up. */
export const DB_SERVER = 'odoo-pg';
export const FILESTORE_ROOT = 'files';

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
  /** The filestore directory of a database (in the root "files"). */
  fs(db: string): string;
  /** The operator's registry as it stands (what setInfra last wrote). */
  registry: TestRegistry;
  /** Adds (or replaces) entries of the registry and has the server read it again. */
  addInfra(more: TestRegistry): Promise<void>;
  /** Hands what a test wrote under the filestore root to the run user (as an operator would). */
  giveFiles(): void;
  /** Creates one more environment of the project (its database need not exist). */
  addEnv(spec: EnvSpec, overrides?: { server?: string; filestore?: string | null }): Promise<void>;
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
  /** Real Odoo databases (made by odoo-bin, cached; see odoo-sources.ts) before the environments are created. */
  real?: Record<string, { version: '17.0' | '19.0'; kind: SourceKind }>;
  requirePasswords?: boolean;
  server?: Partial<ServerOptions>;
}): Promise<OdooProject> {
  const scratch = mkdtempSync(join(tmpdir(), `odooops-${opts.slug}-`));
  // The run user (tests run as root) works in the filestore root: it must be able to reach it.
  chmodSync(scratch, 0o755);
  mkdirSync(join(scratch, 'filestore'));
  const password = `${opts.slug}-test-Pw-${process.pid}`; // at least 12 characters: the registry refuses shorter ones
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
  for (const [db, { version, kind }] of Object.entries(opts.real ?? {})) {
    const made = await realOdooSource(await installOdoo(version), kind, { srv, role: ODOO_ROLE, password, db, filestore: fs(db) });
    console.log(`# Odoo ${version} ${kind} source ${db}: ${made.seconds.toFixed(1)} s${made.cached ? ' (cached)' : ' (made by odoo-bin)'}`);
  }
  chownToRunUser(join(scratch, 'filestore'));
  process.env[passwordVar] = password;
  const registry: TestRegistry = {
    databaseServers: { [DB_SERVER]: { host: srv.host, port: srv.port, user: ODOO_ROLE, password: `env:${passwordVar}`, projects: [opts.slug] } },
    filestoreRoots: { [FILESTORE_ROOT]: { path: join(scratch, 'filestore'), projects: [opts.slug] } },
  };
  await c.setInfra(registry);
  const admin = await c.user(undefined, { instanceAdmin: true });
  assert.equal((await admin.call('POST', '/api/projects', { slug: opts.slug, name: opts.slug })).status, 201);

  const p: OdooProject = {
    cp: c, odooPg: srv, admin, slug: opts.slug, password, passwordVar, scratch, fs, close, registry,
    async addInfra(more) {
      for (const [k, entries] of Object.entries(more) as [keyof TestRegistry, Record<string, Record<string, unknown>>][]) {
        registry[k] = { ...(registry[k] ?? {}), ...entries };
      }
      await c.setInfra(registry);
    },
    giveFiles: () => chownToRunUser(join(scratch, 'filestore')),
    async addEnv(spec, overrides = {}) {
      const filestore = overrides.filestore === undefined ? FILESTORE_ROOT : overrides.filestore;
      const r = await admin.call('POST', `/api/projects/${opts.slug}/environments`, {
        name: spec.name, stage: spec.stage, ...(spec.url ? { url: spec.url } : {}), ...(filestore ? { filestore } : {}),
        database: { server: overrides.server ?? DB_SERVER, name: spec.db },
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

/**
 * A project whose production is a real Odoo database (odoo-sources.ts, plain) of `version`, with a
 * staging beside it on the same server, the odoo-bin install, the connection odoo-bin shell uses, and a
 * scratch data directory for it. Everything goes when `cleanups` run.
 */
export async function realProductionAndStaging(version: '17.0' | '19.0', slug: string, cleanups: (() => Promise<void> | void)[]) {
  const odoo = await installOdoo(version);
  const p = await startOdooProject({
    slug,
    generate: {},
    real: { [`${slug}_prod`]: { version, kind: 'plain' } },
    envs: [
      { name: 'production', stage: 'production', db: `${slug}_prod`, url: 'https://erp.brasserie.example' },
      { name: 'staging', stage: 'staging', db: `${slug}_staging`, url: 'http://localhost:8069' },
    ],
  });
  cleanups.push(() => p.close());
  const server = { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password };
  const data = mkdtempSync(join(tmpdir(), `odooops-${slug}-shell-`));
  cleanups.push(() => rmSync(data, { recursive: true, force: true }));
  return { odoo, p, server, data };
}
