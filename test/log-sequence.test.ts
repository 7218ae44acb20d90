import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogLine } from '../contract/index.ts';
import { LogSequencer } from '../contract/log-sequence.ts';

const l = (seq: number): LogLine => ({ seq, ts: '2026-11-22T00:00:00.000Z', stream: 'stdout', line: `line ${seq}` });
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => l(a + i));

test('history and live batches merge into one ordered stream without duplicates', () => {
  const out: number[] = [];
  const s = new LogSequencer((lines) => out.push(...lines.map((x) => x.seq)));
  s.accept(range(1, 10)); // history
  s.accept(range(8, 15)); // live batch overlapping history
  s.accept(range(21, 25)); // live after a gap (a reconnect lost 16-20)
  assert.equal(s.last, 15);
  assert.ok(s.hasGap);
  assert.equal(s.pending, 5);
  s.accept(range(16, 22)); // gap-fill from history, overlapping what waits
  assert.deepEqual(out, range(1, 25).map((x) => x.seq));
  assert.ok(!s.hasGap);
  s.accept(range(1, 25)); // a full replay changes nothing
  assert.equal(out.length, 25);
});

test('starting after a known sequence number ignores older lines', () => {
  const out: number[] = [];
  const s = new LogSequencer((lines) => out.push(...lines.map((x) => x.seq)), 100);
  s.accept([l(99), l(100), l(102), l(101)]);
  assert.deepEqual(out, [101, 102]);
});

test('a partial live batch (only its newest lines) is a gap until history fills it', () => {
  const out: number[] = [];
  const s = new LogSequencer((lines) => out.push(...lines.map((x) => x.seq)));
  s.acceptBroadcast({ run_id: 1, first_seq: 1, last_seq: 10, partial: true, lines: range(8, 10) });
  assert.deepEqual(out, []);
  assert.ok(s.hasGap);
  s.accept(range(1, 9)); // history page
  assert.deepEqual(out, range(1, 10).map((x) => x.seq));
  assert.ok(!s.hasGap);
  // A batch whose only line was too long to travel: nothing to show, but the viewer knows to fetch.
  s.acceptBroadcast({ run_id: 1, first_seq: 11, last_seq: 11, partial: true, lines: [] });
  assert.ok(s.hasGap);
  assert.equal(s.known, 11);
  s.accept(range(11, 11));
  assert.ok(!s.hasGap);
  assert.deepEqual(out, range(1, 11).map((x) => x.seq));
});
