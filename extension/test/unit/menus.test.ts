// What the tree's menus and the palette offer, by role: the contextValues the tree gives its nodes
// (labels.ts) and the context keys set from the store's abilities, run through package.json's own
// `when` clauses. Also the tree's words for times and parameters, and its stable item ids.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { approvalContext, backupContext, backupLabel, duration, environmentContext, itemId, paramsText, projectContext, relativeTime, runContext, tickTargets, utcTime } from '../../src/labels.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

/**
 * Evaluates the `when` clauses package.json uses (&&-joined terms: key, !key, key == value,
 * key =~ /re/, true/false) against a context. Anything else fails the test: a new form needs a look.
 */
function holds(when: string, ctx: Record<string, string | boolean>): boolean {
  return when.split('&&').map((t) => t.trim()).every((term) => {
    if (term === 'true' || term === 'false') return term === 'true';
    let m = /^(!?)([\w.]+)$/.exec(term);
    if (m) return !!ctx[m[2]!] !== (m[1] === '!');
    m = /^([\w.]+) == ([\w.:-]+)$/.exec(term);
    if (m) return ctx[m[1]!] === m[2];
    m = /^([\w.]+) =~ \/(.*)\/$/.exec(term);
    if (m) return new RegExp(m[2]!).test(String(ctx[m[1]!] ?? ''));
    throw new Error(`a when clause this test cannot read: ${term}`);
  });
}
/** The commands a node's context menu (inline or not) offers. */
const menu = (viewItem: string) => (pkg.contributes.menus['view/item/context'] as { command: string; when: string }[])
  .filter((m) => holds(m.when, { view: 'odooops.environments', viewItem })).map((m) => m.command.replace('odooops.', '')).sort();
/** The commands the palette offers with these context keys set. */
const palette = (keys: Record<string, boolean>) => {
  const hidden = new Map((pkg.contributes.menus.commandPalette as { command: string; when: string }[]).map((m) => [m.command, m.when]));
  return (pkg.contributes.commands as { command: string }[]).map((c) => c.command)
    .filter((c) => !hidden.has(c) || holds(hidden.get(c)!, Object.fromEntries(Object.entries(keys).map(([k, v]) => [`odooops.${k}`, v]))))
    .map((c) => c.replace('odooops.', '')).sort();
};
const RUN_ON_ENV = ['backupNow', 'checkHealth', 'deploy', 'importDatabase', 'openEnvironment', 'restoreBackup', 'showOdooLog', ...['openShell', 'openPsql', 'openOdooShell']];

describe('Menus by role', () => {
  it('environments: a viewer is offered only to open it; whoever may operate there, the runs; an admin, Edit too', () => {
    assert.deepEqual(menu(environmentContext('production', 'viewer', false)), ['openEnvironment']);
    assert.deepEqual(menu(environmentContext('staging', 'developer', false)), ['openEnvironment'], 'a developer on staging');
    assert.deepEqual(menu(environmentContext('staging', 'tester', true)), [...RUN_ON_ENV, 'cloneProdToStaging'].sort());
    assert.deepEqual(menu(environmentContext('production', 'tester', false)), ['openEnvironment']);
    assert.deepEqual(menu(environmentContext('production', 'admin', true)), [...RUN_ON_ENV, 'editEnvironment'].sort(), 'no clone into production');
    assert.deepEqual(menu(environmentContext('development', 'admin', true)), [...RUN_ON_ENV, 'cloneProdToStaging', 'editEnvironment'].sort());
  });

  it('runs and backups: Cancel, Re-run, Retry, Restore and Download only where your role operates; logs for everyone', () => {
    assert.deepEqual(menu(runContext('running', false)), ['openRunLogs']);
    assert.deepEqual(menu(runContext('running', true)), ['cancelRun', 'openRunLogs']);
    assert.deepEqual(menu(runContext('failed', false)), ['openRunLogs']);
    assert.deepEqual(menu(runContext('failed', true)), ['openRunLogs', 'rerun', 'retryRun']);
    assert.deepEqual(menu(runContext('succeeded', true)), ['openRunLogs', 'rerun']);
    assert.deepEqual(menu(backupContext('pre-deploy', false)), []);
    assert.deepEqual(menu(backupContext('pre-deploy', true)), ['downloadBackup', 'restoreBackup']);
  });

  it('approvals: never Approve on your own request; Run approved… only for whom may run it', () => {
    const ME = '00000000-0000-4000-8000-0000000000ee';
    const PEER = '00000000-0000-4000-8000-0000000000ff';
    const a = (fields: Partial<C.Approval>): C.Approval => ({ id: '00000000-0000-4000-8000-0000000000a1', environment: 'production', kind: 'restore', params: {}, reason: null,
      status: 'pending', requestedBy: ME, decidedBy: null, usedByRunId: null, ...fields });
    // Even were the store wrong about deciding, the requester's own request is marked as such.
    assert.equal(approvalContext(a({}), ME, { decide: true, run: false }), 'approval:pending:mine');
    assert.deepEqual(menu(approvalContext(a({}), ME, { decide: true, run: false })), []);
    assert.deepEqual(menu(approvalContext(a({ requestedBy: PEER }), ME, { decide: true, run: false })), ['approve', 'reject']);
    assert.deepEqual(menu(approvalContext(a({ requestedBy: PEER }), ME, { decide: false, run: false })), [], 'a role that cannot decide');
    assert.deepEqual(menu(approvalContext(a({ status: 'approved', decidedBy: PEER }), ME, { decide: false, run: true })), ['runApproved']);
    assert.deepEqual(menu(approvalContext(a({ status: 'approved', decidedBy: ME, requestedBy: PEER }), ME, { decide: false, run: false })), []);
  });

  it('projects: Invite for admins, a branch\'s environment for whoever may operate on development', () => {
    assert.deepEqual(menu(projectContext('admin', true)), ['createDevEnvironment', 'inviteMember']);
    assert.deepEqual(menu(projectContext('developer', true)), ['createDevEnvironment']);
    assert.deepEqual(menu(projectContext('viewer', false)), []);
  });

  it('the palette: a viewer is offered no command that would walk them through pickers to be refused', () => {
    const connected = { connected: true, signedIn: true, hasProjects: true };
    const none = { canRun: false, canClone: false, canCreateDev: false, isAdmin: false, canDecide: false, canRunApproved: false };
    const viewer = palette({ ...connected, ...none });
    for (const c of ['backupNow', 'restoreBackup', 'importDatabase', 'deploy', 'checkHealth', 'cloneProdToStaging', 'createDevEnvironment', 'editEnvironment',
      'inviteMember', 'approve', 'reject', 'runApproved', 'downloadBackup', 'showMoreRuns', 'openShell', 'openPsql', 'openOdooShell']) assert.ok(!viewer.includes(c), c);
    assert.ok(viewer.includes('refresh') && viewer.includes('connect'));
    const developer = palette({ ...connected, ...none, canRun: true, canClone: true, canCreateDev: true });
    for (const c of ['backupNow', 'deploy', 'checkHealth', 'cloneProdToStaging', 'createDevEnvironment', 'importDatabase', 'openShell', 'openPsql', 'openOdooShell']) assert.ok(developer.includes(c), c);
    for (const c of ['editEnvironment', 'inviteMember', 'approve']) assert.ok(!developer.includes(c), c);
    assert.ok(palette({ ...connected, ...none, canDecide: true }).includes('approve'));
    assert.ok(palette({ ...connected, ...none, isAdmin: true }).includes('editEnvironment'));
    const toolbar = (pkg.contributes.menus['view/title'] as { command: string; when: string }[]).find((m) => m.command === 'odooops.createDevEnvironment')!;
    assert.equal(holds(toolbar.when, { view: 'odooops.environments', 'odooops.hasProjects': true, 'odooops.canCreateDev': false }), false, 'not in the view\'s toolbar either');
  });
});

describe('The tree\'s words', () => {
  const now = Date.parse('2026-12-01T12:00:00.000Z');
  it('times are relative, with the absolute UTC time for tooltips', () => {
    const ago = (ms: number) => relativeTime(new Date(now - ms).toISOString(), now);
    assert.deepEqual([ago(1000), ago(42_000), ago(3 * 60_000 + 5000), ago(2 * 3600_000), ago(30 * 3600_000), ago(4 * 86400_000), ago(90 * 86400_000)],
      ['just now', '42 s ago', '3 min ago', '2 h ago', 'yesterday', '4 days ago', '2026-09-02']);
    assert.equal(utcTime('2026-12-01T10:04:05.123Z'), '2026-12-01 10:04:05 UTC');
  });

  it('a running run\'s elapsed time grows with the clock; a finished one\'s does not', () => {
    const started = { startedAt: '2026-12-01T11:59:00.000Z', finishedAt: null };
    assert.equal(duration(started, now), '1m 0s');
    assert.equal(duration(started, now + 5000), '1m 5s');
    assert.equal(duration({ ...started, startedAt: '2026-12-01T09:30:00.000Z' }, now), '2h 30m');
    assert.equal(duration({ ...started, finishedAt: '2026-12-01T11:59:00.020Z' }, now + 60_000), '0s');
    assert.equal(duration({ startedAt: null, finishedAt: null }, now), '', 'not started');
  });

  it('the clock redraws a running run every tick (nothing else), and every run in sight now and then for its "… ago"', () => {
    const nodes = (['running', 'succeeded', 'queued', 'running'] as const).map((status, i) => ({ run: { status }, i }));
    assert.deepEqual(tickTargets(nodes, 1, 30).map((n) => n.i), [0, 3]);
    assert.deepEqual(tickTargets(nodes, 29, 30).map((n) => n.i), [0, 3]);
    assert.deepEqual(tickTargets(nodes, 30, 30).map((n) => n.i), [0, 1, 2, 3]);
    assert.deepEqual(tickTargets(nodes.filter((n) => n.run.status !== 'running'), 7, 30), [], 'nothing running: no redraw');
  });

  it('parameters in words: a backup by its label, never only its id; a deploy by its commit or branch', () => {
    const b: C.Backup = { id: '00000000-0000-4000-8000-0000000000b1', environment: 'production', kind: 'daily', createdAt: '2026-11-30T02:00:00.000Z', sizeBytes: 1,
      sha256: null, odooVersion: '17.0', database: 'acme', masked: false, runId: 41 };
    assert.equal(paramsText('restore', { backup: b.id }, b), 'the daily backup of production made 2026-11-30 02:00:00 UTC by run #41');
    assert.equal(backupLabel(b), 'daily 2026-11-30 02:00');
    assert.equal(paramsText('deploy', { branch: 'main' }), 'the newest commit of branch main');
    assert.equal(paramsText('clone', {}), 'no parameters');
  });

  it('item ids are the same for the same node from one load to the next, and differ between nodes', () => {
    const ids = [itemId.project('acme'), itemId.approvals('acme'), itemId.environment('acme', 'staging'), itemId.backups('acme', 'staging'),
      itemId.run('acme', 7), itemId.run('acme', 70), itemId.more('acme', 'staging'), itemId.environment('acme', 'staging2'), itemId.project('acme2')];
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(itemId.environment('acme', 'staging'), itemId.environment('acme', 'staging'));
  });
});
