// Extension-host integration tests: mocha inside a real VS Code (code-server), the extension loaded from
// extension/ (extensionDevelopmentPath), talking to a real `odooops server --demo` on the embedded
// default through its API and Realtime. The driver (test/extension-host.test.ts) passes the server's
// home (ODOOOPS_HOME, where the extension finds it), a second admin's token (ODOOOPS_IT_PEER_TOKEN:
// approvals need another person) and a scratch folder.
import assert from 'node:assert/strict';
import { existsSync, openSync, readSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type * as C from '../../../contract/index.ts';
import type { OdooOpsApi } from '../../src/extension.ts';
import type { Node } from '../../src/tree.ts';
import { openTraceback } from '../../src/logPanel.ts';

const PROJECT = 'demo';
const scratch = process.env.ODOOOPS_IT_SCRATCH!;
let ext: vscode.Extension<OdooOpsApi>;
let api: OdooOpsApi;
let server: { url: string; token: string };

async function until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
/** The API as the second admin (another person, another editor): what this editor must hear of. */
async function peer<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(new URL(path, server.url), {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { authorization: `Bearer ${process.env.ODOOOPS_IT_PEER_TOKEN}`, 'content-type': 'application/json' },
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json as T;
}
const children = async (node?: Node) => (await api.tree.getChildren(node)) ?? [];
async function envNode(name: string): Promise<Extract<Node, { type: 'environment' }>> {
  const [project] = await children();
  const env = (await children(project)).find((n) => n.type === 'environment' && n.env.name === name);
  assert.ok(env, `environment ${name} in the tree`);
  return env as Extract<Node, { type: 'environment' }>;
}
const finished = (name: string, kind: string, after = 0) => until(`a finished ${kind} run on ${name}`, () =>
  api.store.runsOf(PROJECT, name).find((r) => r.kind === kind && r.id > after && ['succeeded', 'failed', 'cancelled'].includes(r.status)));

describe('OdooOps in the extension host', () => {
  before(async () => {
    ext = vscode.extensions.getExtension<OdooOpsApi>('odooops.odooops')!;
    assert.ok(ext, 'the extension is installed from its development folder');
    assert.equal(ext.isActive, false, 'not activated before its view or a command is used (lazy activation)');
    const t0 = performance.now();
    api = await ext.activate();
    const ms = performance.now() - t0;
    const bundle = statSync(join(ext.extensionPath, 'dist', 'extension.cjs')).size;
    console.log(`activation: ${ms.toFixed(0)} ms (connect + first load of the tree included); extension.cjs ${(bundle / 1024).toFixed(0)} KiB`);
    writeFileSync(join(scratch, 'activation.json'), JSON.stringify({ activationMs: ms, bundleBytes: bundle }));
    const conn = JSON.parse((await import('node:fs')).readFileSync(join(process.env.ODOOOPS_HOME!, 'connection.json'), 'utf8'));
    server = { url: conn.url, token: conn.token };
    assert.equal(api.store.error, null);
  });

  it('registers every command it contributes (and nothing else under odooops.)', async () => {
    const declared = (ext.packageJSON.contributes.commands as { command: string }[]).map((c) => c.command).sort();
    const registered = (await vscode.commands.getCommands(true)).filter((c) => c.startsWith('odooops.') && !c.startsWith('odooops.environments')).sort();
    assert.deepEqual(registered, declared);
  });

  it('draws projects → environments → backups and runs, with contextValues for the menus', async () => {
    const [project, ...others] = await children();
    assert.equal(others.length, 0);
    assert.equal(project!.type, 'project');
    const envs = (await children(project)).filter((n) => n.type === 'environment');
    assert.deepEqual(envs.map((n) => n.type === 'environment' && n.env.name), ['production', 'staging', 'dev-feature']);
    // The operator is the demo's admin: ":admin" offers Edit Environment….
    assert.deepEqual(envs.map((n) => api.tree.getTreeItem(n).contextValue), ['environment:production:admin', 'environment:staging:admin', 'environment:development:admin']);
    const staging = await envNode('staging');
    // The demo clones production into staging as soon as its worker runs.
    await finished('staging', 'clone');
    const [backups, ...runs] = await children(staging);
    assert.equal(backups!.type, 'backups');
    assert.ok(runs.every((r) => r.type === 'run'));
    assert.match(String(api.tree.getTreeItem(runs[0]!).contextValue), /^run:(succeeded|failed)$/);
    const list = await children(backups);
    assert.ok(list.some((b) => b.type === 'backup' && b.backup.kind === 'clone' && b.backup.masked), 'the masked clone is listed under staging');
  });

  it('a run queued by someone else arrives through Realtime and refreshes only its environment; its backup is listed', async () => {
    const fired: (Node | Node[] | undefined | null | void)[] = [];
    const sub = api.tree.onDidChangeTreeData((e) => fired.push(e));
    try {
      const staging = await envNode('staging');
      const before = (await children((await children(staging))[0])).length;
      // Queued through the API by the other admin: this editor's own commands are not involved.
      const queued = await peer<C.Run>('POST', `/api/projects/${PROJECT}/environments/staging/runs`, { kind: 'backup', params: { kind: 'manual' } });
      await until('the run in the tree', () => api.store.runsOf(PROJECT, 'staging').some((r) => r.id === queued.id));
      const done = await until('the backup to succeed', () => api.store.runsOf(PROJECT, 'staging').find((r) => r.id === queued.id && r.status === 'succeeded'), 180_000);
      assert.equal(done.requestedBy, (await peer('GET', '/api/me')).userId);
      assert.ok(fired.length >= 2, `${fired.length} refreshes`);
      for (const e of fired) {
        assert.ok(Array.isArray(e), 'never a refresh of the whole tree');
        for (const n of e) assert.ok((n.type === 'environment' || n.type === 'backups') && n.env.name === 'staging', `only staging's nodes: ${n.type}`);
      }
      const after = (await children((await children(staging))[0])).filter((b) => b.type === 'backup');
      assert.equal(after.length, before + 1, 'the backups are read again after a backup succeeded');
      assert.match(String(api.tree.getTreeItem(staging).description), /backup succeeded/);
      const runItem = (await children(staging)).find((n) => n.type === 'run' && n.run.id === queued.id)!;
      assert.match(String(api.tree.getTreeItem(runItem).description), /^succeeded · \d+s · .* · by Second admin$/, 'status, duration, when, who');
    } finally {
      sub.dispose();
    }
  });

  it('"Edit Environment…" changes an environment through the API; the tree shows it, a refused change changes nothing', async () => {
    const url = 'https://staging.demo.example';
    const original = api.store.environment(PROJECT, 'staging')!.url;
    await vscode.commands.executeCommand('odooops.editEnvironment', { project: PROJECT, environment: 'staging', set: { url } });
    assert.equal(api.store.environment(PROJECT, 'staging')?.url, url, 'the store has the server\'s answer');
    assert.equal((await peer<C.Environment>('GET', `/api/projects/${PROJECT}/environments/staging`)).url, url, 'the server has it');
    const tooltip = api.tree.getTreeItem(await envNode('staging')).tooltip as vscode.MarkdownString;
    assert.match(tooltip.value, /staging\.demo\.example/);
    // A filestore root the registry does not bind to the project: the server refuses, nothing changes.
    const before = api.store.environment(PROJECT, 'staging')!;
    await vscode.commands.executeCommand('odooops.editEnvironment', { project: PROJECT, environment: 'staging', set: { filestore: 'not-in-registry' } });
    assert.equal((await peer<C.Environment>('GET', `/api/projects/${PROJECT}/environments/staging`)).filestore, before.filestore);
    await vscode.commands.executeCommand('odooops.editEnvironment', { project: PROJECT, environment: 'staging', set: { url: original } });
    assert.equal(api.store.environment(PROJECT, 'staging')?.url, original);
  });

  it('"Create development environment from branch…" makes the branch an environment filled with a masked clone; "Check health" says it is healthy', async () => {
    await vscode.commands.executeCommand('odooops.createDevEnvironment', { project: PROJECT, branch: 'feature/it-Test', then: 'clone' });
    const env = await until('the new environment in the tree', () => api.store.environment(PROJECT, 'dev-feature-it-test'));
    assert.equal(env.stage, 'development');
    assert.equal(env.branch, 'feature/it-Test');
    const clone = await finished('dev-feature-it-test', 'clone');
    assert.equal(clone.status, 'succeeded', clone.error ?? '');
    const node = await envNode('dev-feature-it-test');
    assert.equal(api.tree.getTreeItem(node).contextValue, 'environment:development:admin');

    await vscode.commands.executeCommand('odooops.checkHealth', node);
    const health = await until('a health verdict', () => { const h = api.store.healthOf(PROJECT, 'dev-feature-it-test'); return h?.state !== 'checking' && h; });
    assert.equal(health.state, 'healthy', health.run.error ?? '');
    const tooltip = api.tree.getTreeItem(node).tooltip as vscode.MarkdownString;
    assert.match(tooltip.value, /health: \*\*healthy\*\*.*Odoo 17\.0[\d.]* · \d+ modules · .*neutralized/);

    // A branch name that could reach a shell is refused before anything is asked of the server.
    const count = api.store.environments(PROJECT).length;
    await vscode.commands.executeCommand('odooops.createDevEnvironment', { project: PROJECT, branch: 'x;touch /tmp/pwned', then: 'clone' });
    assert.equal(api.store.environments(PROJECT).length, count);
    assert.equal(existsSync('/tmp/pwned'), false);
  });

  it('restoring production asks another admin; their approval arrives through Realtime and the requester runs it', async () => {
    const newest = Math.max(0, ...api.store.runsOf(PROJECT, 'production').map((r) => r.id));
    await vscode.commands.executeCommand('odooops.backupNow', await envNode('production'));
    const backupRun = await finished('production', 'backup', newest);
    assert.equal(backupRun.status, 'succeeded', backupRun.error ?? '');
    const production = await envNode('production');
    const backups = await children((await children(production))[0]);
    const backup = backups.find((b) => b.type === 'backup' && b.backup.runId === backupRun.id);
    assert.ok(backup, 'the new backup under production');
    assert.equal(api.tree.getTreeItem(backup).contextValue, 'backup:manual');

    await vscode.commands.executeCommand('odooops.restoreBackup', backup);
    const pending = api.store.openApprovals(PROJECT);
    assert.equal(pending.length, 1);
    assert.equal(pending[0]!.kind, 'restore');
    assert.equal(pending[0]!.status, 'pending');
    const [project] = await children();
    const folder = (await children(project)).find((n) => n.type === 'approvals');
    assert.ok(folder, 'an Approvals folder in the project');
    const [item] = await children(folder);
    assert.equal(api.tree.getTreeItem(item!).contextValue, 'approval:pending');
    assert.ok(!api.store.runsOf(PROJECT, 'production').some((r) => r.kind === 'restore'), 'nothing restored yet');

    await peer('POST', `/api/approvals/${pending[0]!.id}/approve`);
    const approved = await until('the approval to arrive', () => api.store.openApprovals(PROJECT).find((a) => a.status === 'approved'), 30_000);
    const [runnable] = await children((await children(project)).find((n) => n.type === 'approvals'));
    assert.equal(api.tree.getTreeItem(runnable!).contextValue, 'approval:approved');
    await vscode.commands.executeCommand('odooops.runApproved', runnable);
    const restore = await finished('production', 'restore');
    assert.equal(restore.status, 'succeeded', restore.error ?? '');
    assert.equal(restore.approvalId, approved.id);
    await until('the approval to be used up', async () => (await api.store.reloadApprovals(PROJECT), api.store.openApprovals(PROJECT).length === 0), 30_000);
  });

  it('"Download backup" streams the Odoo zip into the chosen file; an unknown backup leaves no file', async () => {
    const staging = await envNode('staging');
    const [b] = (await children((await children(staging))[0])).filter((n) => n.type === 'backup');
    assert.ok(b && b.type === 'backup');
    const to = join(scratch, 'staging.zip');
    await vscode.commands.executeCommand('odooops.downloadBackup', { backup: b.backup.id, to });
    assert.ok(existsSync(to), 'saved');
    assert.ok(!existsSync(`${to}.part`), 'no partial file left');
    const head = Buffer.alloc(4);
    const fd = openSync(to, 'r');
    readSync(fd, head, 0, 4, 0);
    closeSync(fd);
    assert.equal(head.toString('latin1'), 'PK\x03\x04', 'a zip');
    assert.ok(statSync(to).size > 10_000);

    const ghost = join(scratch, 'ghost.zip');
    await vscode.commands.executeCommand('odooops.downloadBackup', { backup: '00000000-0000-4000-8000-000000000000', to: ghost });
    assert.ok(!existsSync(ghost) && !existsSync(`${ghost}.part`));
  });

  it('"Import database…" uploads the downloaded Odoo zip into staging and follows the import run', async () => {
    const zip = join(scratch, 'staging.zip');
    assert.ok(existsSync(zip), 'the zip the download test saved');
    const before = api.store.environments(PROJECT).find((e) => e.name === 'staging');
    assert.ok(before);
    const lastId = Math.max(0, ...(await peer<C.Run[]>('GET', `/api/runs?project=${PROJECT}&environment=staging&limit=20`)).map((r) => r.id));
    // With a file given, no picker and no confirmation: the upload's progress notification, then the run.
    await vscode.commands.executeCommand('odooops.importDatabase', { project: PROJECT, env: 'staging', file: zip });
    const run = await finished('staging', 'import', lastId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.match(JSON.stringify(run.result), /"backupId"/);
    const backups = await peer<C.Backup[]>('GET', `/api/projects/${PROJECT}/environments/staging/backups`);
    assert.equal(backups[0]?.kind, 'import', 'kept as a backup of kind import');
  });

  it('"Deploy…" on a project without a repository: the run fails saying what to set', async () => {
    await vscode.commands.executeCommand('odooops.deploy', { project: PROJECT, environment: 'dev-feature-it-test', revision: 'a'.repeat(40) });
    const run = await finished('dev-feature-it-test', 'deploy');
    assert.deepEqual(run.params, { revision: 'a'.repeat(40) });
    assert.equal(run.status, 'failed');
    assert.match(run.error ?? '', /has no repository to deploy from; set it: odooops project git demo --repo-url/);

    // "Retry" on the failed run: the same run again, as its attempt 2 (it fails the same way).
    const node = await until('the failed deploy in the tree', async () =>
      (await children(await envNode('dev-feature-it-test'))).find((n) => n.type === 'run' && n.run.id === run.id && n.run.status === 'failed'), 30_000);
    assert.equal(api.tree.getTreeItem(node).contextValue, 'run:failed', 'its menu offers Retry');
    await vscode.commands.executeCommand('odooops.retryRun', node);
    // The run waits for a free worker slot behind the other tests' runs: as long as any run may take.
    const retried = await until('the retried deploy to fail again', () =>
      api.store.runsOf(PROJECT, 'dev-feature-it-test').find((r) => r.id === run.id && r.status === 'failed' && r.attempts === 2)).catch(async (err) => {
      const now = await peer<C.Run>('GET', `/api/runs/${run.id}`);
      throw new Error(`${(err as Error).message}; the API says ${now.status}, attempt ${now.attempts}`);
    });
    assert.match(retried.error ?? '', /has no repository to deploy from/);
  });

  it('"Cancel run" on a queued run cancels it; "Re-run" queues it again and it runs', async () => {
    // Runs of one environment go in order: the backup waits behind two clones, so it is still queued.
    await peer<C.Run>('POST', `/api/projects/${PROJECT}/environments/dev-feature/runs`, { kind: 'clone' });
    const clone = await peer<C.Run>('POST', `/api/projects/${PROJECT}/environments/dev-feature/runs`, { kind: 'clone', idempotencyKey: 'it-second-clone' });
    const backup = await peer<C.Run>('POST', `/api/projects/${PROJECT}/environments/dev-feature/runs`, { kind: 'backup', params: { kind: 'manual' } });
    const node = await until('the queued backup in the tree', async () =>
      (await children(await envNode('dev-feature'))).find((n) => n.type === 'run' && n.run.id === backup.id && n.run.status === 'queued'), 30_000);
    assert.equal(api.tree.getTreeItem(node).contextValue, 'run:queued', 'its menu offers Cancel run');
    await vscode.commands.executeCommand('odooops.cancelRun', node);
    const cancelled = await until('the backup cancelled', () => api.store.runsOf(PROJECT, 'dev-feature').find((r) => r.id === backup.id && r.status === 'cancelled'), 60_000);
    assert.equal((await until('the clone to end', () => api.store.runsOf(PROJECT, 'dev-feature').find((r) => r.id === clone.id && r.status !== 'queued' && r.status !== 'running'), 180_000)).status, 'succeeded');

    await vscode.commands.executeCommand('odooops.rerun', { type: 'run', run: cancelled });
    const again = await until('the re-run', () => api.store.runsOf(PROJECT, 'dev-feature').find((r) => r.id > backup.id && r.kind === 'backup'), 30_000);
    assert.deepEqual(again.params, { kind: 'manual' });
    assert.equal((await finished('dev-feature', 'backup', backup.id)).status, 'succeeded');
  });

  it('a traceback line opens the file in the workspace at its line; a file the workspace lacks opens nothing', async () => {
    const root = vscode.workspace.workspaceFolders![0]!.uri;
    const file = vscode.Uri.joinPath(root, 'addons', 'sale_ext', 'models', 'sale_order.py');
    await vscode.workspace.fs.writeFile(file, Buffer.from(Array.from({ length: 20 }, (_, i) => `# line ${i + 1}`).join('\n')));
    // As Odoo prints it on the server: another root, the same addons/<module>/... tail.
    await openTraceback('/opt/odoo/custom/addons/sale_ext/models/sale_order.py', 12);
    const editor = await until('the file in an editor', () => vscode.window.activeTextEditor?.document.uri.path === file.path && vscode.window.activeTextEditor, 30_000);
    assert.equal(editor.selection.active.line, 11);
    await openTraceback('/opt/odoo/addons/not_here/models/x.py', 3);
    assert.equal(vscode.window.activeTextEditor?.document.uri.path, file.path, 'nothing else opened');
  });

  it('"Open run logs" opens the run\'s log beside the editor, once', async () => {
    const run = api.store.lastRun(PROJECT, 'staging')!;
    await vscode.commands.executeCommand('odooops.openRunLogs', { runId: run.id });
    await vscode.commands.executeCommand('odooops.openRunLogs', { runId: run.id });
    const tabs = await until('the log panel', () => {
      const t = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((tab) => tab.input instanceof vscode.TabInputWebview && tab.label.includes(`#${run.id}`));
      return t.length ? t : null;
    }, 30_000);
    assert.equal(tabs.length, 1, 'one panel per run');
  });
});
