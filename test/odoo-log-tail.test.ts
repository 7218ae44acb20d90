// The pieces under the live Odoo log without Odoo: the parser's levels and continuation lines (real
// Odoo 17 lines, a real traceback), and the file tail on a real file through what logrotate and a
// restarted Odoo do to it (test/odoo-log.test.ts does the same with real Odoo, end to end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, linkSync, mkdtempSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { OdooLogParser } from '../server/odoo/odoo-log-line.ts';
import { tailFile } from '../server/worker/log-tail.ts';
import { eventually } from './helpers/control-plane.ts';

const ODOO_17 = [
  '2026-12-01 15:00:00,123 1234 INFO ? odoo: Odoo version 17.0',
  '2026-12-01 15:00:01,001 1234 WARNING logs_dev odoo.addons.base.models.ir_module: module sale: not installable, skipped',
  '2026-12-01 15:00:02,500 1234 ERROR logs_dev odoo.http: Exception during request handling.',
  'Traceback (most recent call last):',
  '  File "/opt/odoo/odoo/http.py", line 2190, in __call__',
  '    response = request._serve_db()',
  'KeyError: \'res.nothing\'',
  '2026-12-01 15:00:03,000 1234 DEBUG_RPC logs_dev odoo.http.rpc.request: call_kw',
  '2026-12-01 15:00:04,000 1234 CRITICAL logs_dev odoo.service.server: Failed to load registry',
  '2026-12-01 15:00:05,000 1234 INFO logs_dev werkzeug: 127.0.0.1 - - "GET /web/health HTTP/1.1" 200 - 1 0.001 0.002',
];

test('levels as Odoo writes them; continuation lines (a traceback) take the level and time of their record', () => {
  const p = new OdooLogParser();
  const parsed = ODOO_17.map((l) => p.parse(l));
  assert.deepEqual(parsed.map((l) => l.level), ['info', 'warning', 'error', 'error', 'error', 'error', 'error', 'debug', 'critical', 'info']);
  assert.equal(parsed[0]!.ts, '2026-12-01T15:00:00.123Z');
  assert.equal(parsed[4]!.ts, '2026-12-01T15:00:02.500Z', 'the traceback has its record\'s time');
  assert.deepEqual(parsed.map((l) => l.line), ODOO_17, 'the text is left as it is');
  // Something before any record (Python's own output at start) is info, with the time it was read.
  const fresh = new OdooLogParser().parse('  warnings.warn(');
  assert.equal(fresh.level, 'info');
  assert.ok(Math.abs(Date.parse(fresh.ts) - Date.now()) < 5000);
});

test('the file tail: backlog, appends, rename + new file, copytruncate, a deleted file, resume', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'odooops-tail-'));
  const file = join(dir, 'odoo.log');
  const got: string[] = [];
  try {
    // An existing log: only its last bytes' whole lines are shown.
    writeFileSync(file, Array.from({ length: 2000 }, (_, i) => `old line ${i}`).join('\n') + '\n');
    const tail = tailFile(file, async (lines) => void got.push(...lines), { pollMs: 20, backlogBytes: 100 });
    await eventually('the backlog', async () => got.includes('old line 1999'));
    assert.ok(got.length < 12 && got.length > 3, `a backlog of the last lines only: ${got.length}`);
    assert.match(got[0]!, /^old line \d+$/, 'starting at a line, not inside one');
    got.length = 0;
    // Appended (Odoo running, or restarted: it appends to the same file); a line written in two parts is one line.
    appendFileSync(file, 'a1\na2\npart');
    await eventually('a1, a2', async () => got.includes('a2'));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, ['a1', 'a2'], 'a line without its newline waits');
    appendFileSync(file, 'ial\n');
    await eventually('the joined line', async () => got.includes('partial'));
    // Renamed: Odoo still writes to it until the new file appears; both are read, in order.
    renameSync(file, `${file}.1`);
    appendFileSync(`${file}.1`, 'late in the old file\n');
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(file, 'first of the new file\n');
    await eventually('the new file', async () => got.includes('first of the new file'));
    assert.ok(got.indexOf('late in the old file') >= 0 && got.indexOf('late in the old file') < got.indexOf('first of the new file'), got.join('|'));
    // copytruncate: the file shrinks under the offset; what comes after is read from its start.
    appendFileSync(file, 'before truncation\n');
    await eventually('before truncation', async () => got.includes('before truncation'));
    copyFileSync(file, `${file}.2`);
    truncateSync(file, 0);
    await new Promise((r) => setTimeout(r, 100));
    appendFileSync(file, 'after truncation\n');
    await eventually('after truncation', async () => got.includes('after truncation'));
    // Deleted, then created again (a new Odoo after a cleanup).
    rmSync(file);
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(file, 'created again\n');
    await eventually('created again', async () => got.includes('created again'));
    assert.equal(got.filter((l) => l === 'before truncation').length, 1, 'each line once');
    const at = tail.position()!;
    await tail.stop();

    // Stopped (nobody follows); lines written meanwhile; resumed at the position: those lines, once.
    appendFileSync(file, 'while away\n');
    const again: string[] = [];
    const resumed = tailFile(file, async (lines) => void again.push(...lines), { pollMs: 20, resume: at, backlogBytes: 10_000 });
    await eventually('the resumed tail', async () => again.includes('while away'));
    assert.deepEqual(again, ['while away']);
    await resumed.stop();
    // A position of another file (rotated while nobody followed) is not used: the backlog instead.
    const other = tailFile(file, async (lines) => void again.push(...lines), { pollMs: 20, resume: { source: '0:1', offset: 5 } });
    await eventually('the backlog of the file as it is', async () => again.includes('created again'));
    await other.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the file tail reads no file the run user could point it at: a symbolic link, a hard link, another owner, a FIFO', async () => {
  // The server may be root while Odoo (a branch's code) runs as the run user, who owns the log's directory.
  const dir = mkdtempSync(join(tmpdir(), 'odooops-tail-'));
  const file = join(dir, 'odoo.log');
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'root only\n');
  try {
    const attempt = async (owners?: number[]) => {
      const got: string[] = [];
      const errors: string[] = [];
      const t = tailFile(file, async (lines) => void got.push(...lines), { pollMs: 20, owners, onError: (e) => errors.push(e.message) });
      await eventually('the tail to look at the file', async () => errors.length > 0 || got.length > 0, 5000);
      await new Promise((r) => setTimeout(r, 100));
      await t.stop();
      return { got, errors };
    };
    symlinkSync(secret, file);
    let r = await attempt();
    assert.deepEqual(r.got, []);
    assert.match(r.errors.join(), /ELOOP|symbolic/i);
    rmSync(file);
    linkSync(secret, file);
    r = await attempt();
    assert.deepEqual(r.got, []);
    assert.match(r.errors[0]!, /\(2 links to it\); not read/);
    assert.equal(r.errors.length, 1, 'said once, not every poll');
    rmSync(file);
    writeFileSync(file, 'a log\n');
    r = await attempt([process.getuid!() + 1]);
    assert.deepEqual(r.got, []);
    assert.match(r.errors[0]!, /\(owner uid \d+\); not read/);
    // The control: the same file, its owner allowed, is read.
    r = await attempt([process.getuid!()]);
    assert.deepEqual(r.got, ['a log']);
    rmSync(file);
    execFileSync('mkfifo', [file]);
    r = await attempt();
    assert.deepEqual(r.got, []);
    assert.match(r.errors[0]!, /not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
