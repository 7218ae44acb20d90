// Queue benchmark (`npm run bench:queue`): how fast the real Worker drains ops.runs through
// ops.claim_run, compared with a raw FOR UPDATE SKIP LOCKED loop on a plain table in the same cluster,
// and how long a run waits between ops.queue_run and its claim by idle workers woken by LISTEN/NOTIFY.
//
// Everything runs on one fresh embedded PostgreSQL, fsync on by default (BENCH_FAST=1 turns it off).
// Knobs: BENCH_N (runs per round, default 5000), BENCH_ENVS (default 200), BENCH_CONCURRENCY (runs per
// worker, default 1), BENCH_SAMPLES (latency
// samples, default 300). Progress goes to stderr, the results table to stdout.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { z } from 'zod';
import { startEmbedded, type EmbeddedCluster } from '../server/db/embedded.ts';
import { migrate } from '../server/db/migrate.ts';
import { createPool } from '../server/db/session.ts';
import type { Executor } from '../server/worker/executor.ts';
import { Worker } from '../server/worker/worker.ts';
import { seedProject, tempHome } from '../test/helpers/control-plane.ts';

const int = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};
const N = int('BENCH_N', 5000);
const ENVS = int('BENCH_ENVS', 200);
const SAMPLES = int('BENCH_SAMPLES', 300);
const FAST = process.env.BENCH_FAST === '1';
const WORKER_COUNTS = [1, 4, 8];
// Runs per Worker at a time. 1 by default: a worker then claims like one raw connection does, so the
// two columns compare like with like. BENCH_CONCURRENCY raises it.
const CONCURRENCY = int('BENCH_CONCURRENCY', 1);
const LEASE_SECONDS = 30;
const ROUND_TIMEOUT_MS = 90_000;
const SPACING_MS = 20;

const progress = (m: string) => process.stderr.write(`${m}\n`);

const noop: Executor<object> = {
  kind: 'bench.noop',
  description: 'bench',
  params: z.object({}),
  execute: async () => null,
};

// ---------------------------------------------------------------------------------------------------
// Sampling what the busy backends wait on (pg_stat_activity), to see where the time goes.

class WaitSampler {
  readonly counts = new Map<string, number>();
  samples = 0;
  private running = true;
  private loop: Promise<void>;
  private readonly pool: pg.Pool;
  private readonly appName: string;

  constructor(pool: pg.Pool, appName: string, everyMs = 50) {
    this.pool = pool;
    this.appName = appName;
    this.loop = this.run(everyMs);
  }

  private async run(everyMs: number): Promise<void> {
    while (this.running) {
      const { rows } = await this.pool.query<{ w: string; n: number }>(
        `select coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') || case when a.wait_event_type = 'Lock' then coalesce(' (' || (
                  select case when l.locktype = 'object' then l.classid::regclass::text || ' ' || l.objid else l.locktype end
                  from pg_locks l where l.pid = a.pid and not l.granted limit 1) || ')', '') else '' end as w,
                count(*)::int as n
         from pg_stat_activity a
         where a.application_name = $1 and a.state = 'active' and a.pid <> pg_backend_pid()
         group by 1`,
        [this.appName],
      );
      this.samples++;
      for (const r of rows) this.counts.set(r.w, (this.counts.get(r.w) ?? 0) + r.n);
      await sleep(everyMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Average number of active backends per sample in each state, largest first. */
  summary(top = 5): string {
    const entries = [...this.counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
    if (entries.length === 0 || this.samples === 0) return '(no active backends sampled)';
    return entries.map(([w, n]) => `${w} ${(n / this.samples).toFixed(2)}`).join(', ');
  }
}

// ---------------------------------------------------------------------------------------------------

interface OpsRound {
  workers: number;
  seconds: number;
  succeeded: number;
  failed: number;
  claimCalls: number;
  waits: string;
  functions: { name: string; calls: number; totalMs: number; selfMs: number }[];
}

async function readFunctionStats(admin: pg.Pool) {
  await admin.query('select pg_stat_clear_snapshot()');
  const { rows } = await admin.query<{ name: string; calls: number; total_ms: number; self_ms: number }>(
    `select schemaname || '.' || funcname as name, calls::int, total_time as total_ms, self_time as self_ms
     from pg_stat_user_functions where schemaname in ('ops', 'auth') order by total_time desc`,
  );
  return rows.map((r) => ({ name: r.name, calls: r.calls, totalMs: r.total_ms, selfMs: r.self_ms }));
}

async function opsRound(url: string, admin: pg.Pool, projectId: string, envIds: string[], workers: number): Promise<OpsRound> {
  // On a connection of its own that then exits: a backend flushes its statistics when it exits, so the
  // triggers fired by this insert are counted before the reset, not in the round.
  const seeder = await connect(url, 'bench-seed');
  await seeder.query('delete from ops.runs');
  await seeder.query(
    `insert into ops.runs (project_id, environment_id, kind)
     select $1::uuid, ($2::uuid[])[1 + (g % cardinality($2::uuid[]))], 'bench.noop' from generate_series(0, $3::int - 1) g`,
    [projectId, envIds, N],
  );
  await seeder.query('analyze ops.runs');
  await seeder.end();
  await sleep(300);
  await admin.query('select pg_stat_reset()');

  const { pools, ws } = makeWorkers(url, workers, `bench-${workers}`);

  const sampler = new WaitSampler(admin, 'odooops');
  const t0 = performance.now();
  let succeeded = 0;
  let failed = 0;
  let seconds = 0;
  try {
    await Promise.all(ws.map((w) => w.start()));
    let lastReport = t0;
    for (;;) {
      const { rows } = await admin.query<{ s: number; f: number }>(
        `select count(*) filter (where status = 'succeeded')::int as s, count(*) filter (where status in ('failed', 'cancelled'))::int as f
         from ops.runs`,
      );
      succeeded = rows[0]!.s;
      failed = rows[0]!.f;
      const now = performance.now();
      seconds = (now - t0) / 1000;
      if (succeeded + failed >= N) break;
      if (now - t0 > ROUND_TIMEOUT_MS) {
        progress(`  ops W=${workers}: timed out after ${ROUND_TIMEOUT_MS / 1000} s with ${succeeded}/${N} succeeded`);
        break;
      }
      if (now - lastReport >= 1000) {
        lastReport = now;
        progress(`  ops W=${workers}: ${succeeded}/${N} succeeded, ${(succeeded / seconds).toFixed(0)} runs/s so far`);
      }
      await sleep(50);
    }
  } finally {
    await sampler.stop();
    await Promise.all(ws.map((w) => w.stop(5000)));
    await Promise.all(pools.map((p) => p.end()));
  }
  // Backends flush their statistics when they exit; give the pools' backends a moment to go.
  await sleep(300);
  const functions = await readFunctionStats(admin);
  const claimCalls = functions.find((f) => f.name === 'ops.claim_run')?.calls ?? 0;
  return { workers, seconds, succeeded, failed, claimCalls, waits: sampler.summary(), functions };
}

// ---------------------------------------------------------------------------------------------------

const RAW_CLAIM = `with c as (select id from bench_raw where status = 'queued' order by id limit 1 for update skip locked)
  update bench_raw r set status = 'done' from c where r.id = c.id returning r.id`;
// The same claim, plus one pg_notify per claim as ops.claim_run's trigger sends: shows what NOTIFY costs.
const RAW_CLAIM_NOTIFY = `with c as (select id from bench_raw where status = 'queued' order by id limit 1 for update skip locked),
  u as (update bench_raw r set status = 'done' from c where r.id = c.id returning r.id)
  select u.id, pg_notify('bench_raw', u.id::text) from u`;

interface RawRound {
  workers: number;
  seconds: number;
  claimed: number;
  waits: string;
}

async function connect(url: string, appName: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: appName });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function rawRound(url: string, admin: pg.Pool, workers: number, withNotify = false): Promise<RawRound> {
  await admin.query('truncate bench_raw restart identity');
  await admin.query(`insert into bench_raw (status) select 'queued' from generate_series(1, $1::int)`, [N]);
  await admin.query('analyze bench_raw');
  const clients = await Promise.all(Array.from({ length: workers }, () => connect(url, 'bench-raw')));
  // With NOTIFY, as many listeners as claimers, like one LISTEN connection per Worker.
  const listeners = withNotify ? await Promise.all(Array.from({ length: workers }, () => connect(url, 'bench-raw-listen'))) : [];
  for (const l of listeners) await l.query('listen bench_raw');
  const sampler = new WaitSampler(admin, 'bench-raw');
  let claimed = 0;
  const t0 = performance.now();
  const ticker = setInterval(() => {
    progress(`  raw${withNotify ? '+notify' : ''} W=${workers}: ${claimed}/${N} claimed`);
  }, 1000);
  try {
    await Promise.all(
      clients.map(async (c) => {
        for (;;) {
          const r = await c.query(withNotify ? RAW_CLAIM_NOTIFY : RAW_CLAIM);
          if (r.rowCount === 0) return;
          claimed += r.rowCount ?? 0;
        }
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  const seconds = (performance.now() - t0) / 1000;
  await sampler.stop();
  await Promise.all([...clients, ...listeners].map((c) => c.end()));
  const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from bench_raw where status = 'done'`);
  if (rows[0]!.n !== N || claimed !== N) {
    progress(`  raw W=${workers}: WARNING ${claimed} claims reported, ${rows[0]!.n} rows done, expected ${N}`);
  }
  return { workers, seconds, claimed, waits: sampler.summary() };
}

// ---------------------------------------------------------------------------------------------------

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function latencyOf(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN };
}

/** `count` real Workers, each with its own pool (and its own LISTEN connection once started). */
function makeWorkers(url: string, count: number, prefix: string): { pools: pg.Pool[]; ws: Worker[] } {
  const pools = Array.from({ length: count }, () => createPool(url, CONCURRENCY + 2));
  const ws = pools.map(
    (pool, i) =>
      new Worker({
        pool, databaseUrl: url, executors: [noop], id: `${prefix}-${i}`, concurrency: CONCURRENCY, leaseSeconds: LEASE_SECONDS,
        log: (m) => progress(`  [worker] ${m}`),
      }),
  );
  return { pools, ws };
}

/** Queue-to-claim through ops.queue_run as the service role, with 4 idle Workers listening. */
async function opsPickup(url: string, admin: pg.Pool, envIds: string[]): Promise<Latency> {
  await admin.query('delete from ops.runs');
  const { pools, ws } = makeWorkers(url, 4, 'bench-pickup');
  const queuer = await connect(url, 'bench-queuer');
  try {
    await Promise.all(ws.map((w) => w.start()));
    await sleep(200); // all idle and listening
    for (let i = 0; i < SAMPLES; i++) {
      await queuer.query('begin');
      try {
        await queuer.query(
          `select set_config('role', 'service_role', true), set_config('request.jwt.claims', '{"role":"service_role"}', true)`,
        );
        await queuer.query(`select * from ops.queue_run($1, 'bench.noop')`, [envIds[i % envIds.length]]);
        await queuer.query('commit');
      } catch (err) {
        await queuer.query('rollback').catch(() => {});
        throw err;
      }
      if ((i + 1) % 100 === 0) progress(`  ops pickup: ${i + 1}/${SAMPLES} queued`);
      await sleep(SPACING_MS);
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from ops.runs where status = 'queued' or status = 'running'`);
      if (rows[0]!.n === 0) break;
      if (Date.now() > deadline) {
        progress(`  ops pickup: ${rows[0]!.n} run(s) still queued or running after 30 s`);
        break;
      }
      await sleep(50);
    }
  } finally {
    await queuer.end();
    await Promise.all(ws.map((w) => w.stop(5000)));
    await Promise.all(pools.map((p) => p.end()));
  }
  const { rows } = await admin.query<{ ms: number }>(
    `select extract(epoch from (started_at - queued_at)) * 1000 as ms from ops.runs where started_at is not null`,
  );
  return latencyOf(rows.map((r) => Number(r.ms)));
}

/** The floor for the same shape of pickup: a trigger NOTIFY, 4 LISTEN connections claiming with SKIP LOCKED. */
async function rawPickup(url: string, admin: pg.Pool): Promise<Latency> {
  await admin.query('truncate bench_pickup restart identity');
  const claimers = await Promise.all(Array.from({ length: 4 }, () => connect(url, 'bench-raw-pickup')));
  const drains: Promise<void>[] = [];
  for (const c of claimers) {
    let filling = false;
    let dirty = false;
    const fill = async () => {
      filling = true;
      try {
        while (dirty) {
          dirty = false;
          for (;;) {
            const r = await c.query(
              `with q as (select id from bench_pickup where status = 'queued' order by id limit 1 for update skip locked)
               update bench_pickup p set status = 'done', claimed_at = now() from q where p.id = q.id returning p.id`,
            );
            if (r.rowCount === 0) break;
          }
        }
      } finally {
        filling = false;
      }
    };
    c.on('notification', () => {
      dirty = true;
      if (!filling) drains.push(fill());
    });
    await c.query('listen bench_pickup');
  }
  const queuer = await connect(url, 'bench-queuer');
  try {
    for (let i = 0; i < SAMPLES; i++) {
      await queuer.query('begin');
      await queuer.query(`insert into bench_pickup default values`);
      await queuer.query('commit');
      if ((i + 1) % 100 === 0) progress(`  raw pickup: ${i + 1}/${SAMPLES} queued`);
      await sleep(SPACING_MS);
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from bench_pickup where status = 'queued'`);
      if (rows[0]!.n === 0 || Date.now() > deadline) break;
      await sleep(50);
    }
    await Promise.all(drains);
  } finally {
    await queuer.end();
    await Promise.all(claimers.map((c) => c.end()));
  }
  const { rows } = await admin.query<{ ms: number }>(
    `select extract(epoch from (claimed_at - queued_at)) * 1000 as ms from bench_pickup where claimed_at is not null`,
  );
  return latencyOf(rows.map((r) => Number(r.ms)));
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const home = tempHome('odooops-bench-');
  let cluster: EmbeddedCluster | undefined;
  let admin: pg.Pool | undefined;
  const cleanup = async () => {
    await admin?.end().catch(() => {});
    await cluster?.stop().catch(() => {});
    rmSync(home, { recursive: true, force: true });
    // As root with a home the postgres user cannot enter, the cluster lives outside it.
    if (cluster && !cluster.dataDir.startsWith(home)) rmSync(dirname(cluster.dataDir), { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    progress('interrupted; stopping the cluster');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    progress(`starting an embedded PostgreSQL (fsync ${FAST ? 'off' : 'on'}) in ${home}`);
    cluster = await startEmbedded({ home, fast: FAST });
    admin = createPool(cluster.url, 4);
    const client = await admin.connect();
    try {
      await migrate(client);
    } finally {
      client.release();
    }
    // Per-function timings for the diagnosis (pg_stat_user_functions); a small cost on every call.
    await admin.query(`alter system set track_functions = 'all'`);
    await admin.query('select pg_reload_conf()');
    const { rows: ver } = await admin.query<{ v: string; fsync: string; sc: string }>(
      `select current_setting('server_version') as v, current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc`,
    );

    const adminUser = randomUUID();
    const envs = Array.from({ length: ENVS }, (_, i) => ({ name: `env-${i}`, stage: 'development' as const }));
    progress(`seeding a project with ${ENVS} environments`);
    const { projectId, envIds } = await seedProject(admin, adminUser, 'bench', envs);
    const envIdList = envs.map((e) => envIds[e.name]!);
    await admin.query(`select ops.register_run_kinds('[{"kind":"bench.noop","description":"bench"}]')`);
    await admin.query('create table bench_raw (id bigserial primary key, status text)');
    await admin.query(`create table bench_pickup (id bigserial primary key, status text not null default 'queued',
      queued_at timestamptz not null default now(), claimed_at timestamptz)`);
    await admin.query(`create function bench_pickup_notify() returns trigger language plpgsql as $$
      begin perform pg_notify('bench_pickup', new.id::text); return null; end $$`);
    await admin.query(`create trigger bench_pickup_notify after insert on bench_pickup for each row execute function bench_pickup_notify()`);

    const ops: OpsRound[] = [];
    for (const w of WORKER_COUNTS) {
      progress(`ops.claim_run via Worker: ${w} worker(s) x concurrency ${CONCURRENCY}, ${N} runs`);
      ops.push(await opsRound(cluster.url, admin, projectId, envIdList, w));
    }
    await admin.query('delete from ops.runs');

    const raw: RawRound[] = [];
    for (const w of WORKER_COUNTS) {
      progress(`raw SKIP LOCKED: ${w} connection(s), ${N} rows`);
      raw.push(await rawRound(cluster.url, admin, w));
    }
    progress(`raw SKIP LOCKED + pg_notify per claim (diagnostic): 4 connections, ${N} rows`);
    const rawNotify = await rawRound(cluster.url, admin, 4, true);

    progress(`queue-to-claim latency: 4 idle workers, ${SAMPLES} runs queued ${SPACING_MS} ms apart`);
    const pickup = await opsPickup(cluster.url, admin, envIdList);
    progress(`raw pickup floor: 4 LISTEN + SKIP LOCKED connections, ${SAMPLES} rows inserted ${SPACING_MS} ms apart`);
    const rawPick = await rawPickup(cluster.url, admin);

    // ---- report ----
    const out: string[] = [];
    const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
    out.push('');
    out.push(`OdooOps queue benchmark — PostgreSQL ${ver[0]!.v} (embedded), fsync=${ver[0]!.fsync}, synchronous_commit=${ver[0]!.sc}`);
    out.push(`${N} runs per round over ${ENVS} environments; each Worker has concurrency ${CONCURRENCY}, its own pool and LISTEN connection.`);
    out.push('One ops run = ops.claim_run + environment read + one log batch (ops.append_run_logs) + ops.finish_run,');
    out.push('with the notify and audit triggers; one raw claim = one autocommit UPDATE ... FOR UPDATE SKIP LOCKED.');
    out.push('');
    out.push('workers | ops.claim_run runs/s | raw SKIP LOCKED claims/s | ratio | claim_run calls per run');
    out.push('--------+----------------------+--------------------------+-------+------------------------');
    for (let i = 0; i < WORKER_COUNTS.length; i++) {
      const o = ops[i]!;
      const r = raw[i]!;
      const oRate = o.succeeded / o.seconds;
      const rRate = r.claimed / r.seconds;
      const note = o.failed > 0 || o.succeeded < N ? ` (${o.succeeded} succeeded, ${o.failed} failed)` : '';
      out.push(
        `${String(o.workers).padStart(7)} | ${fmt(oRate).padStart(20)} | ${fmt(rRate).padStart(24)} | ${fmt(oRate / rRate, 2).padStart(5)} | ${fmt(o.claimCalls / Math.max(1, o.succeeded), 2).padStart(6)}${note}`,
      );
    }
    out.push(`raw SKIP LOCKED + one pg_notify per claim, 4 connections (+4 listeners): ${fmt(rawNotify.claimed / rawNotify.seconds)} claims/s`);
    out.push('');
    out.push(`queue-to-claim (runs.started_at - runs.queued_at, ${pickup.n} samples, 4 idle workers): p50 ${fmt(pickup.p50, 1)} ms, p99 ${fmt(pickup.p99, 1)} ms, max ${fmt(pickup.max, 1)} ms`);
    out.push(`raw pickup floor (trigger NOTIFY -> LISTEN -> SKIP LOCKED, ${rawPick.n} samples):  p50 ${fmt(rawPick.p50, 1)} ms, p99 ${fmt(rawPick.p99, 1)} ms, max ${fmt(rawPick.max, 1)} ms`);
    out.push('(queued_at is the queuing transaction\'s start, so both include that transaction\'s round trips and commit)');
    out.push('');
    const o4 = ops[WORKER_COUNTS.indexOf(4)]!;
    const r4 = raw[WORKER_COUNTS.indexOf(4)]!;
    const ratio4 = o4.succeeded / o4.seconds / (r4.claimed / r4.seconds);
    out.push('aims (from the issue):');
    out.push(`  at 4 workers at least half the raw rate: ${fmt(ratio4, 2)} of raw -> ${ratio4 >= 0.5 ? 'MET' : 'NOT MET'}`);
    out.push(`  pickup p50 under 50 ms:                  ${fmt(pickup.p50, 1)} ms -> ${pickup.p50 < 50 ? 'MET' : 'NOT MET'}`);
    out.push('');
    out.push('where the time goes (average active backends per 50 ms sample, by wait event; CPU = not waiting):');
    for (const o of ops) out.push(`  ops W=${o.workers}: ${o.waits}`);
    for (const r of raw) out.push(`  raw W=${r.workers}: ${r.waits}`);
    out.push(`  raw+notify W=4: ${rawNotify.waits}`);
    out.push('  (Lock:object (pg_database 0) is the lock a transaction that sent NOTIFY holds from pre-commit until its');
    out.push('   commit record is flushed: such commits run one at a time and cannot share a WAL flush.)');
    out.push(`server-side function time at 4 workers (pg_stat_user_functions; total ms / calls, commits not included):`);
    for (const f of o4.functions.slice(0, 10)) {
      out.push(`  ${f.name.padEnd(28)} calls ${String(f.calls).padStart(6)}  total ${fmt(f.totalMs).padStart(6)} ms  self ${fmt(f.selfMs).padStart(6)} ms  (${fmt((f.totalMs / Math.max(1, f.calls)) * 1000)} us/call)`);
    }
    out.push(`ops W=4 wall time ${fmt(o4.seconds, 2)} s for ${o4.succeeded} runs; total ${fmt((performance.now() - started) / 1000, 1)} s for the whole benchmark`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
