// Log pipeline benchmark (`npm run bench:logs`): a run that prints 1,000,000 lines, measured end to end
// through the real worker (LogBatcher → ops.append_run_logs → realtime.send → the local gateway → a
// supabase-js subscriber), next to a plain batched INSERT of the same lines into a plain table in the
// same database and the same run; and what the run costs in Realtime messages and stored bytes, against
// the Realtime budget (server/realtime/budget.ts) and Supabase's Free, Pro and Team quotas.
// Knobs: BENCH_LINES (default 1,000,000), BENCH_FAST=1 (fsync off).
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { realtimeClient } from '../client/realtime.ts';
import * as C from '../contract/index.ts';
import { LogSequencer } from '../contract/log-sequence.ts';
import { startServer } from '../server/app.ts';
import {
  LOG_ANNOUNCEMENTS_PER_SECOND, LOG_MESSAGE_MAX_BYTES, PLANS, SUPABASE_ID_BYTES, SUPABASE_RETENTION_HOURS,
} from '../server/realtime/budget.ts';
import { call, eventually, tempHome } from '../test/helpers/control-plane.ts';

const LINES = Number(process.env.BENCH_LINES) > 0 ? Number(process.env.BENCH_LINES) : 1_000_000;
const FAST = process.env.BENCH_FAST === '1';
const progress = (m: string) => process.stderr.write(`${m}\n`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const line = (i: number) => `2026-11-22 04:00:00,000 1234 INFO odoo_prod odoo.modules.loading: line ${i} of the benchmark, loading module ${i % 97}`;

const home = tempHome('odooops-bench-logs-');
// The test executors never reach a database: a registry entry to name, where nothing listens.
writeFileSync(join(home, 'infrastructure.yaml'), JSON.stringify({ databaseServers: { 'test-db': { host: '127.0.0.1', port: 9, projects: ['*'] } } }));
const server = await startServer({ home, fast: FAST, log: () => {}, executorModules: ['test/fixtures/chatty.ts', 'test/fixtures/executors.ts'] });
try {
  // The operator's own token: they may create projects.
  const token = server.token;
  await call(server.url, token, 'POST', '/api/projects', { slug: 'bench', name: 'Bench' });
  await call(server.url, token, 'POST', '/api/projects/bench/environments', { name: 'dev', stage: 'development', database: { server: 'test-db', name: 'bench' } });

  // 1. Raw ceiling: the same lines, batched INSERTs of 1000 into a plain table.
  await server.pool.query('create table bench_raw_logs (run_id bigint, seq bigint, ts timestamptz, stream text, line text, primary key (run_id, seq))');
  progress(`raw: inserting ${LINES} lines in batches of 1000`);
  let t0 = performance.now();
  for (let start = 1; start <= LINES; start += 1000) {
    const n = Math.min(1000, LINES - start + 1);
    const lines = Array.from({ length: n }, (_, k) => line(start + k));
    await server.pool.query(
      `insert into bench_raw_logs select 1, $1::bigint + o - 1, now(), 'stdout', l from unnest($2::text[]) with ordinality as u(l, o)`,
      [start, lines],
    );
  }
  const rawRate = LINES / ((performance.now() - t0) / 1000);

  // 2. The pipeline, with one supabase-js subscriber measuring emit-to-receive latency per line. A
  // blocking run holds the environment until the subscriber has joined the benchmark run's topic.
  const blocker = await call(server.url, token, 'POST', '/api/projects/bench/environments/dev/runs', { kind: 'test.block', params: { blockOn: [1] } });
  await eventually('the blocker', async () => (await call(server.url, token, 'GET', `/api/runs/${blocker.body.id}`)).body.status === 'running');
  const created = await call(server.url, token, 'POST', '/api/projects/bench/environments/dev/runs', {
    kind: 'test.chatty', params: { lines: LINES, perTick: 1_000_000, tickMs: 0 },
  });
  const runId = created.body.id as number;
  // The viewer is subscribed from before the first line, so the local shim stores every broadcast (it
  // keeps only what a gateway watches; Supabase keeps everything): realtime.messages then holds what
  // Supabase would store for this run, less the id its realtime.send adds to each payload.
  const live = await realtimeClient(server.url, 'odooops-local', { target: { token } });
  const sb = live.sb;
  // The subscriber is a viewer: live batches, and the API for what a partial batch left out (one page
  // request at a time). Latency is measured twice: for the lines that travelled in a message, on
  // arrival; and for every line, when the viewer can show it in order (LogSequencer's emit).
  const liveLatencies: number[] = [];
  const viewLatencies: number[] = [];
  let messages = 0;
  let partial = 0;
  let liveLines = 0;
  let firstMessageAt = 0;
  let lastMessageAt = 0;
  let apiPages = 0;
  const seq = new LogSequencer((lines) => {
    const now = Date.now();
    for (const l of lines) viewLatencies.push(now - Date.parse(l.ts));
  });
  let filling = false;
  const fill = async () => {
    if (filling) return;
    filling = true;
    try {
      while (seq.hasGap) {
        const page = await call(server.url, token, 'GET', `/api/runs/${runId}/logs?after=${seq.last}&limit=5000`);
        apiPages++;
        seq.accept(page.body.lines);
        if (page.body.lines.length === 0) break;
      }
    } finally {
      filling = false;
    }
  };
  await new Promise<void>((resolve, reject) => {
    sb.channel(`run:${runId}`, { config: { private: true } })
      .on('broadcast', { event: 'log' }, (m) => {
        const now = Date.now();
        const b = C.LogBroadcast.parse(m.payload);
        messages++;
        if (b.partial) partial++;
        firstMessageAt ||= now;
        lastMessageAt = now;
        for (const l of b.lines) liveLatencies.push(now - Date.parse(l.ts));
        liveLines += b.lines.length;
        seq.acceptBroadcast(b);
        if (seq.hasGap) void fill();
      })
      .subscribe((status, err) => (status === 'SUBSCRIBED' ? resolve() : status !== 'CLOSED' && reject(err ?? new Error(status))));
  });
  await call(server.url, token, 'POST', `/api/runs/${blocker.body.id}/cancel`);
  progress(`pipeline: run ${runId} printing ${LINES} lines`);
  const run = await eventually('the run', async () => {
    const r = await call(server.url, token, 'GET', `/api/runs/${runId}`);
    if (r.body.status === 'failed') throw new Error(r.body.error);
    return r.body.status === 'succeeded' ? r.body : null;
  }, 600_000);
  await eventually('the viewer', async () => {
    if (seq.last < run.lastSeq && !filling) await fill();
    return seq.last >= run.lastSeq;
  }, 120_000);
  const runSeconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
  const stored = (await server.pool.query('select count(*)::int n from ops.run_logs where run_id = $1', [runId])).rows[0].n as number;
  const pipelineRate = stored / runSeconds;
  liveLatencies.sort((a, b) => a - b);
  viewLatencies.sort((a, b) => a - b);
  const spanSeconds = Math.max((lastMessageAt - firstMessageAt) / 1000, runSeconds, 0.001);
  await sb.removeAllChannels();
  await live.close();
  const { rows: [stats] } = await server.pool.query(
    `select count(*)::int as messages, coalesce(sum(octet_length(m.payload::text)), 0)::bigint as bytes,
            coalesce(max(octet_length(m.payload::text)), 0)::int as largest,
            coalesce(sum(pg_column_size(m.*)), 0)::bigint as row_bytes,
            coalesce(sum(jsonb_array_length(m.payload->'lines')), 0)::int as carried
     from realtime.messages m where m.topic = $1 and m.event = 'log'`,
    [`run:${runId}`],
  );
  const announced = Number(stats.messages);
  const payloadBytes = Number(stats.bytes);
  const supabaseBytes = payloadBytes + announced * SUPABASE_ID_BYTES;
  const perSecond = announced / runSeconds;

  console.log(`\nOdooOps log pipeline benchmark — embedded PostgreSQL 15.18, fsync=${FAST ? 'off' : 'on'}, ${LINES} lines of ~${line(1).length} bytes`);
  console.log(`stored lines/s through the worker:   ${Math.round(pipelineRate)}  (${stored} lines in ${runSeconds.toFixed(1)} s)`);
  console.log(`plain batched INSERT lines/s (raw):  ${Math.round(rawRate)}`);
  console.log(`ratio: ${(pipelineRate / rawRate).toFixed(2)} (aim: at least 0.5)`);
  console.log(`Realtime messages the viewer received: ${messages} (${(messages / spanSeconds).toFixed(1)}/s), ${partial} partial`);
  console.log(`lines that travelled in messages: ${liveLines} (${((100 * liveLines) / stored).toFixed(3)} %)${liveLines ? `; their emit-to-subscriber latency p50 ${pct(liveLatencies, 50)} ms, p99 ${pct(liveLatencies, 99)} ms` : ''}`);
  console.log(`every line, emit-to-viewer in order (live + ${apiPages} API pages): p50 ${pct(viewLatencies, 50)} ms, p99 ${pct(viewLatencies, 99)} ms, max ${viewLatencies.at(-1)} ms (aim: p50 < 500 ms); ${seq.last === run.lastSeq ? 'all' : 'NOT all'} ${run.lastSeq} lines, once, in order`);

  // The Realtime budget: what this run cost, and what that is on each plan.
  const n = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 0 });
  const share = (part: number, whole: number) => `${((100 * part) / whole).toPrecision(2)} %`;
  const mb = (bytes: number) => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(0)} GB` : `${(bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 1)} MB`);
  // The budget's rate, and the first announcement and the end's, which come whenever they come.
  const withinRate = announced <= LOG_ANNOUNCEMENTS_PER_SECOND * runSeconds + 2;
  console.log(`\nRealtime budget (server/realtime/budget.ts): at most ${LOG_ANNOUNCEMENTS_PER_SECOND} announcements a second per run, each at most ${LOG_MESSAGE_MAX_BYTES} B as Supabase stores it`);
  console.log(`messages broadcast for this run: ${n(announced)} in ${runSeconds.toFixed(1)} s = ${perSecond.toFixed(2)}/s per run (budget ${LOG_ANNOUNCEMENTS_PER_SECOND}/s, plus the first and the last: ${withinRate ? 'within' : 'OVER'}); ${n(stats.carried)} lines carried in them`);
  console.log(`bytes stored in realtime.messages: ${n(payloadBytes)} B of payload (largest ${stats.largest} B, budget ${LOG_MESSAGE_MAX_BYTES - SUPABASE_ID_BYTES} B before Supabase's id: ${stats.largest + SUPABASE_ID_BYTES <= LOG_MESSAGE_MAX_BYTES ? 'within' : 'OVER'}); `
    + `${n(Number(stats.row_bytes))} B as rows here; on Supabase, with the id it adds, ${n(supabaseBytes)} B, kept ${SUPABASE_RETENTION_HOURS} h`);
  console.log(`per streaming hour at this rate: ${n(perSecond * 3600)} messages (${n(2 * perSecond * 3600)} with one viewer), ${mb((supabaseBytes / runSeconds) * 3600)} stored`);
  console.log(`against the plans (a message counts when it arrives and again for each viewer it reaches):`);
  console.log(`  plan   project rate: this run / +1 viewer      this run's messages of the month / +1 viewer      this run's storage of the database`);
  for (const plan of PLANS) {
    console.log(`  ${plan.name.padEnd(5)}  ${`${share(perSecond, plan.messagesPerSecond)} / ${share(2 * perSecond, plan.messagesPerSecond)} of ${n(plan.messagesPerSecond)}/s`.padEnd(38)}  `
      + `${`${share(announced, plan.messagesPerMonth)} / ${share(2 * announced, plan.messagesPerMonth)} of ${n(plan.messagesPerMonth / 1e6)} M`.padEnd(48)}  ${share(supabaseBytes, plan.databaseBytes)} of ${mb(plan.databaseBytes)}`);
  }
} finally {
  await server.stop(2000);
  rmSync(home, { recursive: true, force: true });
}
process.exit(0);
