// Extension-host integration tests: mocha inside a real VS Code (code-server), the extension loaded from
// extension/ (extensionDevelopmentPath), talking to a real `odooops server --demo` on the embedded
// default through its API and Realtime. The driver (test/extension-host.test.ts) passes the server's
// home (ODOOOPS_HOME, where the extension finds it), a second admin's token (ODOOOPS_IT_PEER_TOKEN:
// approvals need another person) and a scratch folder. "Signing in" then connects to the same server by
// URL and signs in as octocat with VS Code's GitHub account (a test double's account: ODOOOPS_IT_GITHUB_*,
// the GitHub API behind the server is a double too), and to a Supabase control plane
// (ODOOOPS_IT_SUPABASE_URL) through a real browser, Supabase Auth's stand-in and the URI handler.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as vscode from 'vscode';
import * as C from '../../../contract/index.ts';
import type { OdooOpsApi } from '../../src/extension.ts';
import type { Node } from '../../src/tree.ts';
import { openTraceback } from '../../src/logPanel.ts';
import { sharedDir } from '../../../server/paths.ts';
import type * as Pg from 'pg';

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

// Activation, once, before either group of tests (each may run alone: ODOOOPS_IT_GREP).
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

describe('OdooOps in the extension host', () => {
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
    // Stable ids: VS Code keeps what was expanded across a Refresh and a window reload.
    assert.deepEqual(envs.map((n) => api.tree.getTreeItem(n).id), ['env:demo/production', 'env:demo/staging', 'env:demo/dev-feature']);
    const staging = await envNode('staging');
    // The demo clones production into staging as soon as its worker runs.
    await finished('staging', 'clone');
    const [backups, ...runs] = await children(staging);
    assert.equal(backups!.type, 'backups');
    assert.ok(runs.every((r) => r.type === 'run' || r.type === 'mails'));
    assert.match(String(api.tree.getTreeItem(runs[0]!).contextValue), /^run:(succeeded|failed):operate$/);
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
      // One refresh at least: a backup of the small demo staging can go from queued to succeeded within
      // one Realtime batch, which then refreshes once (the backups re-read below prove it came after).
      assert.ok(fired.length >= 1, `${fired.length} refreshes`);
      for (const e of fired) {
        assert.ok(Array.isArray(e), 'never a refresh of the whole tree');
        for (const n of e) assert.ok((n.type === 'environment' || n.type === 'backups' || n.type === 'mails') && n.env.name === 'staging', `only staging's nodes: ${n.type}`);
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

  it('the mail catcher: "Mail (N)" under staging and development (not production), "No mail caught yet" until mail comes', async () => {
    await finished('staging', 'clone');
    const mailsOf = async (env: string) => (await children(await envNode(env))).filter((n) => n.type === 'mails');
    assert.deepEqual(await mailsOf('production'), [], 'production\'s mail is never caught');
    assert.equal((await mailsOf('dev-feature')).length, 1);
    const [mails] = await mailsOf('staging');
    await until('the count', () => /^Mail \(0\)$/.test(String(api.tree.getTreeItem(mails!).label)));
    const empty = await children(mails);
    assert.deepEqual(empty.map((n) => n.type === 'message' && n.text), ['No mail caught yet']);
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

  it('restoring production asks another admin; their approval arrives through Realtime and the requester runs it, after a safety backup', async () => {
    const newest = Math.max(0, ...api.store.runsOf(PROJECT, 'production').map((r) => r.id));
    await vscode.commands.executeCommand('odooops.backupNow', await envNode('production'));
    const backupRun = await finished('production', 'backup', newest);
    assert.equal(backupRun.status, 'succeeded', backupRun.error ?? '');
    const production = await envNode('production');
    const backups = await children((await children(production))[0]);
    const backup = backups.find((b) => b.type === 'backup' && b.backup.runId === backupRun.id);
    assert.ok(backup, 'the new backup under production');
    assert.equal(api.tree.getTreeItem(backup).contextValue, 'backup:manual:operate');

    await vscode.commands.executeCommand('odooops.restoreBackup', backup);
    const pending = api.store.openApprovals(PROJECT);
    assert.equal(pending.length, 1);
    assert.equal(pending[0]!.kind, 'restore');
    assert.equal(pending[0]!.status, 'pending');
    const [project] = await children();
    const folder = (await children(project)).find((n) => n.type === 'approvals');
    assert.ok(folder, 'an Approvals folder in the project');
    const [item] = await children(folder);
    assert.equal(api.tree.getTreeItem(item!).contextValue, 'approval:pending:mine', 'your own request: no Approve…');
    assert.ok(!api.store.runsOf(PROJECT, 'production').some((r) => r.kind === 'restore'), 'nothing restored yet');

    await peer('POST', `/api/approvals/${pending[0]!.id}/approve`);
    const approved = await until('the approval to arrive', () => api.store.openApprovals(PROJECT).find((a) => a.status === 'approved'), 30_000);
    const [runnable] = await children((await children(project)).find((n) => n.type === 'approvals'));
    assert.equal(api.tree.getTreeItem(runnable!).contextValue, 'approval:approved:run');
    // Running it replaces production's database: a modal says so every time; "Back up first" (the
    // answer given here, as a person would click it) backs production up, waits, then restores.
    const lastBackup = Math.max(0, ...api.store.runsOf(PROJECT, 'production').map((r) => r.id));
    await vscode.commands.executeCommand('odooops.runApproved', { ...runnable, confirm: 'Back up first' });
    const restore = await finished('production', 'restore');
    assert.equal(restore.status, 'succeeded', restore.error ?? '');
    assert.equal(restore.approvalId, approved.id);
    const safety = api.store.runsOf(PROJECT, 'production').find((r) => r.kind === 'backup' && r.id > lastBackup && r.id < restore.id);
    assert.ok(safety, 'a backup of production was queued before the restore');
    assert.equal(safety.status, 'succeeded');
    assert.ok(Date.parse(restore.queuedAt) >= Date.parse(safety.finishedAt!), 'the restore was queued only once the backup had succeeded');
    // Used up once its run is known: no Refresh, no re-read.
    await until('the approval to be used up', () => api.store.openApprovals(PROJECT).length === 0, 30_000);
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

    // A folder that does not exist: said before anything is downloaded, with what to do.
    const nowhere = join(scratch, 'no-such-folder', 'staging.zip');
    await vscode.commands.executeCommand('odooops.downloadBackup', { backup: b.backup.id, to: nowhere });
    assert.match(api.errors.at(-1) ?? '', /^OdooOps: download failed: the folder .*no-such-folder does not exist\. Choose another folder, or create it first/);
    assert.doesNotMatch(api.errors.at(-1) ?? '', /broke off|Run the command again/);
    assert.ok(!existsSync(join(scratch, 'no-such-folder')), 'nothing made');
  });

  it('"Import database…" uploads the downloaded Odoo zip into staging and follows the import run', async () => {
    const zip = join(scratch, 'staging.zip');
    assert.ok(existsSync(zip), 'the zip the download test saved');
    const before = api.store.environments(PROJECT).find((e) => e.name === 'staging');
    assert.ok(before);
    const lastId = Math.max(0, ...(await peer<C.Run[]>('GET', `/api/runs?project=${PROJECT}&environment=staging&limit=20`)).map((r) => r.id));
    // With a file given, no picker; the confirmation answered "Replace": the upload's progress, then the run.
    await vscode.commands.executeCommand('odooops.importDatabase', { project: PROJECT, env: 'staging', file: zip, confirm: 'Replace' });
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
    assert.equal(api.tree.getTreeItem(node).contextValue, 'run:failed:operate', 'its menu offers Retry');
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
    assert.equal(api.tree.getTreeItem(node).contextValue, 'run:queued:operate', 'its menu offers Cancel run');
    // From the palette, by its number as the CLI shows it.
    await vscode.commands.executeCommand('odooops.cancelRun', { runId: `#${backup.id}` });
    const cancelled = await until('the backup cancelled', () => api.store.runsOf(PROJECT, 'dev-feature').find((r) => r.id === backup.id && r.status === 'cancelled'), 60_000);
    const ended = await until('the clone to end', () => api.store.runsOf(PROJECT, 'dev-feature').find((r) => r.id === clone.id && r.status !== 'queued' && r.status !== 'running'), 180_000);
    assert.equal(ended.status, 'succeeded', ended.error ?? '');

    await vscode.commands.executeCommand('odooops.cancelRun', { runId: String(backup.id) });
    assert.equal(api.errors.at(-1), `OdooOps: cancel failed: run #${backup.id} already cancelled: there is nothing to cancel.`);
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

  it('"Open psql": a terminal over the server\'s shell websocket, yellow on staging, where the server\'s refusal is written; production asks first', async () => {
    const before = vscode.window.terminals.length;
    // Production: the modal's answer is not "Open on production" (the tests' click): nothing opens.
    assert.equal(await vscode.commands.executeCommand('odooops.openPsql', { project: PROJECT, environment: 'production', confirm: 'Cancel' }), undefined);
    assert.equal(vscode.window.terminals.length, before);
    const opened = await vscode.commands.executeCommand<{ terminal: vscode.Terminal; pty: { failure?: string } }>('odooops.openPsql', { project: PROJECT, environment: 'staging' });
    assert.equal(opened.terminal.name, 'OdooOps psql: demo/staging');
    assert.equal(((opened.terminal.creationOptions as vscode.ExtensionTerminalOptions).color as vscode.ThemeColor).id, 'terminal.ansiYellow');
    // The demo's environments have no runtime: the server says so, through the websocket, in the terminal.
    const said = await until('the refusal in the terminal', () => opened.pty.failure, 30_000);
    assert.match(said, /staging has no runtime: shells run where its Odoo runs/);
    opened.terminal.dispose();
  });

  it('"Show Odoo log" follows the environment\'s running Odoo log: lines Odoo writes arrive with their levels', async () => {
    // Staging runs its Odoo with the registry's local runtime (the driver wrote it); its log is where
    // LocalOdoo writes it, in the worker's directory. Odoo's lines are written here as Odoo writes them.
    const env = await peer<C.Environment>('PUT', `/api/projects/${PROJECT}/environments/staging/deploy-target`, { runtime: 'it-odoo' });
    const dir = join(sharedDir(process.env.ODOOOPS_HOME!), 'work', 'odoo', env.id);
    mkdirSync(dir, { recursive: true });
    const log = join(dir, 'odoo.log');
    writeFileSync(log, '2026-12-01 15:00:00,001 4242 INFO ? odoo: Odoo version 17.0\n');
    await vscode.commands.executeCommand('odooops.showOdooLog', { project: PROJECT, environment: 'staging' });
    const title = `Odoo log · staging (${PROJECT})`;
    await until('the Odoo log tab', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).some((t) => t.input instanceof vscode.TabInputWebview && t.label === title), 30_000);
    const lines = () => api.odooLogs.lines(PROJECT, 'staging');
    await until('the log\'s first line', () => lines().some((l) => l.line.includes('Odoo version 17.0')), 60_000);
    appendFileSync(log, [
      '2026-12-01 15:00:01,000 4242 WARNING demo_staging odoo.http: <function health> called ignoring args {\'m\'}',
      '2026-12-01 15:00:02,000 4242 ERROR demo_staging odoo.http: Exception during request handling.',
      'Traceback (most recent call last):',
      '  File "/opt/odoo/custom/addons/sale_ext/models/sale_order.py", line 12, in _compute',
      'KeyError: \'x\'', '',
    ].join('\n'));
    const error = await until('the traceback', () => lines().find((l) => l.line.startsWith('KeyError')), 30_000);
    assert.equal(error.level, 'error', 'a traceback line has the level of its ERROR line');
    assert.equal(lines().find((l) => l.line.includes('WARNING'))?.level, 'warning');
    assert.deepEqual(lines().map((l) => l.seq), lines().map((_, i) => lines()[0]!.seq + i), 'in order, once');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await until('the panel closed', () => lines().length === 0, 10_000);
  });
});

describe('Signing in', () => {
  const signedIn = () => !!api.signIns.current?.signedIn;
  /** The API with someone's token (of the demo's server, or `base`'s). */
  const as = async <T = any>(token: string, method: string, path: string, body?: unknown, base = server.url): Promise<{ status: number; body: T }> => {
    const res = await fetch(new URL(path, base), {
      method, body: body === undefined ? undefined : JSON.stringify(body),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const settle = (what: string, fn: () => boolean, ms = 60_000) => until(what, fn, ms);

  it('"Invite member…" invites by GitHub login and by email; what is neither is refused before the server is asked', async () => {
    await vscode.commands.executeCommand('odooops.inviteMember', { project: PROJECT, invitee: '@octocat', role: 'admin' });
    await vscode.commands.executeCommand('odooops.inviteMember', { project: PROJECT, invitee: 'hubot@example.invalid', role: 'developer' });
    await vscode.commands.executeCommand('odooops.inviteMember', { project: PROJECT, invitee: 'octo cat; drop table', role: 'admin' });
    const invitations = await peer<C.Invitation[]>('GET', `/api/projects/${PROJECT}/invitations`);
    assert.deepEqual(invitations.filter((i) => !i.acceptedAt).map((i) => [i.githubLogin ?? i.email, i.role]).sort(),
      [['hubot@example.invalid', 'developer'], ['octocat', 'admin']]);
    const [project] = await children();
    assert.equal(api.tree.getTreeItem(project!).contextValue, 'project:admin', 'its menu offers Invite member…');
  });

  it('a server that signs in with GitHub: offered on the welcome view and in the Accounts menu; picking it signs in, and the invitation shows the project', async () => {
    await vscode.commands.executeCommand('odooops.connect', { url: server.url });
    assert.equal(vscode.workspace.getConfiguration('odooops').get('serverUrl'), server.url);
    assert.equal(signedIn(), false);
    assert.equal(api.store.projects.length, 0, 'nothing is shown before signing in');
    assert.equal(api.client(), undefined);
    assert.deepEqual(api.contextKeys, { connected: false, signInOffered: true, signedIn: false, hasProjects: false }, 'the welcome view with "Sign in with GitHub"');
    // VS Code's Accounts menu now has "Sign in with GitHub to use OdooOps": what a person clicks.
    const request = await until('the Accounts menu entry', async () =>
      (await vscode.commands.getCommands(true)).find((c) => /^github:odooops\.odooops:signIn\d+$/.test(c)), 30_000);
    await vscode.commands.executeCommand(request);
    // The context keys are set one after the other once the projects are in the store: wait for the last.
    await settle('signed in, with the project', () => signedIn() && api.store.projects.some((p) => p.slug === PROJECT) && api.contextKeys.hasProjects === true);
    assert.deepEqual(api.contextKeys, { connected: true, signInOffered: false, signedIn: true, hasProjects: true }, 'the tree, and "Sign out" in the view\'s menu');
    assert.equal(api.store.meName, 'The Octocat');
    assert.deepEqual(api.store.projects.map((p) => [p.slug, p.role]), [[PROJECT, 'admin']], 'the invitation made octocat an admin of demo');
    const me = await as<C.Me>(api.client()!.target.token, 'GET', '/api/me');
    assert.equal(me.body.githubLogin, 'octocat');
    const asked = await vscode.commands.executeCommand<{ created: string[][] }>('githubAuthDouble.asked');
    assert.deepEqual(asked.created, [['read:user', 'user:email']], 'VS Code\'s GitHub account was asked once, for these scopes');
  });

  it('people by name: a colleague who signed in elsewhere, the second admin, and you; a name written as Markdown stays text', async () => {
    // Hubot signs in with the CLI or another editor: the server asks GitHub who the token is.
    const hubot = await fetch(new URL('/api/auth/github', server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ githubToken: process.env.ODOOOPS_IT_HUBOT_TOKEN }) });
    const session = C.AuthSession.parse(await hubot.json());
    assert.deepEqual(session.joined, [{ project: PROJECT, role: 'developer' }], 'invited by email: joined at the first sign-in');
    const queued = await as<C.Run>(session.accessToken, 'POST', `/api/projects/${PROJECT}/environments/dev-feature/runs`, { kind: 'test.chatty', params: { lines: 3 } });
    assert.equal(queued.status, 201, JSON.stringify(queued.body));
    await vscode.commands.executeCommand('odooops.refresh');
    const node = await until('hubot\'s run in the tree', async () =>
      (await children(await envNode('dev-feature'))).find((n) => n.type === 'run' && n.run.id === queued.body.id), 30_000);
    assert.match(String(api.tree.getTreeItem(node).description), / · by Hubot \[bot\]\(command:odooops\.signOut\)$/);
    assert.match(String(api.tree.getTreeItem(node).tooltip), /requested by Hubot/);
    const second = (await peer<C.Me>('GET', '/api/me')).userId;
    const runs = (await children(await envNode('staging'))).filter((n): n is Extract<Node, { type: 'run' }> => n.type === 'run');
    const byPeer = runs.find((n) => n.run.requestedBy === second);
    assert.ok(byPeer, 'a run the second admin queued');
    assert.match(String(api.tree.getTreeItem(byPeer).description), /by Second admin$/);
    const [project] = await children();
    const tooltip = (api.tree.getTreeItem(project!).tooltip as vscode.MarkdownString).value;
    assert.match(tooltip, /members: .*\byou \(admin\)/);
    assert.match(tooltip, /Second admin \(admin\)/);
    // Every punctuation mark of the name escaped: shown as typed, not a command link.
    assert.ok(tooltip.includes('Hubot \\[bot\\]\\(command\\:odooops\\.signOut\\) (developer)'), tooltip);
    assert.ok(!tooltip.includes('[bot](command:'), 'no link made of a name');
  });

  it('a 20 s session is refreshed while a run\'s log panel follows it: new tokens reach requests and Realtime, no gap, no duplicate, never reconnecting', async () => {
    const client = api.client()!;
    const tokens: string[] = [];
    const off = client.onToken((t) => tokens.push(t));
    const feedBefore = api.feedStates.length;
    try {
      const { data: run } = await client.request('POST', `/api/projects/${PROJECT}/environments/dev-feature-it-test/runs`, C.Run, { kind: 'test.chatty', params: { lines: 450, perTick: 1, tickMs: 100 } });
      const seqs: number[] = [];
      const lines: string[] = [];
      const states: string[] = [];
      const subs = [
        api.panels.onLine(run.id, (l) => (seqs.push(l.seq), lines.push(l.line))),
        api.panels.onConnection(run.id, (state, detail) => states.push(detail ? `${state}: ${detail}` : state)),
      ];
      try {
        await vscode.commands.executeCommand('odooops.openRunLogs', { runId: run.id });
        // "Refresh" halfway: the same client (and session) stays, so the panel keeps following.
        await until('a third of the lines', () => lines.length > 150, 120_000);
        await vscode.commands.executeCommand('odooops.refresh');
        assert.equal(api.client(), client, 'Refresh keeps the signed-in client');
        await until('the run to end and its panel to say so', () => states.includes('done'), 200_000);
      } finally {
        for (const d of subs) d.dispose();
      }
      assert.ok(tokens.length >= 2, `the session was refreshed during the run (${tokens.length} new tokens)`);
      assert.deepEqual(states.filter((s) => s !== 'live' && s !== 'done'), [], 'the live connection never dropped');
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'every line once, in order');
      for (let i = 1; i <= 450; i++) assert.equal(lines.filter((l) => l === `line ${i}`).length, 1, `line ${i}`);
      // The project feed (another Realtime channel) got the new tokens too: the end arrived through it.
      const done = await until('the run\'s end through the feed', () => api.store.runsOf(PROJECT, 'dev-feature-it-test').find((r) => r.id === run.id && r.status === 'succeeded'), 30_000);
      assert.equal(done.requestedBy, api.store.me);
      assert.deepEqual(api.feedStates.slice(feedBefore).filter((s) => s !== 'live'), [], 'the project feed never dropped');
      // The tokens the session handed out work, and the one it began with has expired.
      assert.equal((await as(tokens.at(-1)!, 'GET', '/api/me')).status, 200);
    } finally {
      off();
    }
  });

  it('"Sign out" ends the session on the server; "Sign in" signs in again with the same GitHub account, asking nothing', async () => {
    const token = api.client()!.target.token;
    await vscode.commands.executeCommand('odooops.signOut');
    assert.equal(signedIn(), false);
    assert.equal(api.store.projects.length, 0);
    assert.equal(api.contextKeys.signInOffered, true, 'the welcome view offers signing in again');
    const refused = await as(token, 'GET', '/api/me');
    assert.equal(refused.status, 401, 'the access token stopped working at once');
    assert.match(JSON.stringify(refused.body), /session_ended/);

    await vscode.commands.executeCommand('odooops.signIn');
    await settle('signed in again', () => signedIn() && api.store.projects.length === 1);
    const asked = await vscode.commands.executeCommand<{ created: string[][] }>('githubAuthDouble.asked');
    assert.equal(asked.created.length, 1, 'VS Code\'s GitHub session was reused, not made again');
  });

  it('a Supabase control plane: GitHub through Supabase Auth in the browser, back through the URI handler (PKCE); a link nobody asked for is ignored; supabase-js refreshes; sign out', async () => {
    const url = process.env.ODOOOPS_IT_SUPABASE_URL!;
    await vscode.commands.executeCommand('odooops.connect', { url });
    assert.equal(api.signIns.current?.method, 'supabase');
    assert.equal(signedIn(), false);
    // VS Code asks before opening a site it does not know; a person answers "Configure Trusted Domains"
    // for their Supabase project once (tests cannot answer dialogs): what that writes.
    const health = C.Health.parse(await (await fetch(new URL('/api/health', url))).json());
    await vscode.workspace.fs.writeFile(vscode.Uri.parse('trustedDomains:/Trusted Domains.json'), Buffer.from(JSON.stringify([health.auth.supabase!.url])));
    // The browser opens Supabase Auth, which sends it back to this window's URI handler with a code.
    await vscode.commands.executeCommand('odooops.signIn');
    await settle('signed in through Supabase', () => signedIn() && api.store.projects.some((p) => p.slug === 'sb-team'));
    assert.deepEqual(api.store.projects.map((p) => [p.slug, p.role]), [['sb-team', 'developer']]);
    assert.equal(api.store.meName, 'The Octocat');

    // A link someone else made (their own code) while no sign-in is waiting: dropped, nothing changes.
    const before = api.client()!.target.token;
    api.signIns.handleUri(vscode.Uri.parse(`${vscode.env.uriScheme}://odooops.odooops/auth?code=00000000-0000-4000-8000-000000000000`));
    assert.equal(api.client()!.target.token, before);
    assert.ok(signedIn());

    // supabase-js renews the 91 s token by itself; the API client and the project feed get the new one.
    const feedBefore = api.feedStates.length;
    const renewed = await until('a renewed Supabase token', () => api.client()!.target.token !== before && api.client()!.target.token, 120_000);
    const me = await as<C.Me>(renewed, 'GET', '/api/me', undefined, url);
    assert.equal(me.status, 200, JSON.stringify(me.body));
    assert.equal(me.body.githubLogin, 'octocat');
    assert.deepEqual(api.feedStates.slice(feedBefore).filter((s) => s !== 'live'), [], 'the project feed stayed live');
    await vscode.commands.executeCommand('odooops.refresh');
    assert.equal(api.store.error, null);

    await vscode.commands.executeCommand('odooops.signOut');
    assert.equal(signedIn(), false);
    assert.equal(api.store.projects.length, 0);
  });

  it('back to the server on this machine: no sign-in, the operator\'s tree', async () => {
    await vscode.commands.executeCommand('odooops.connect', { url: '' });
    assert.equal(api.signIns.current, undefined);
    assert.deepEqual(api.contextKeys, { connected: true, signInOffered: false, signedIn: false, hasProjects: true });
    assert.deepEqual(api.store.projects.map((p) => p.slug), [PROJECT]);
    assert.equal(api.store.error, null);
  });
});


describe('Connect… and the server on this machine', () => {
  const settings = () => vscode.workspace.getConfiguration('odooops');

  it('no server where odooops.home points: Connect… says where it looked and saves nothing; a server that starts there later is picked up by itself, one that stops is noticed', async () => {
    // Not made yet: the extension watches its parent for it, then the file in it.
    const elsewhere = join(scratch, 'elsewhere-home');
    const file = join(elsewhere, 'connection.json');
    await vscode.commands.executeCommand('odooops.connect', { url: server.url });
    assert.equal(settings().get('serverUrl'), server.url);
    await settings().update('home', elsewhere, vscode.ConfigurationTarget.Global);
    const before = api.errors.length;
    await vscode.commands.executeCommand('odooops.connect', { url: '' });
    const said = api.errors.slice(before).join('\n');
    assert.ok(said.includes(`no OdooOps server found on this machine: looked for ${file} (the setting odooops.home), and no such file`), said);
    assert.match(said, /Start one on this machine with `npm start`/);
    assert.ok(said.includes(`Nothing was saved: OdooOps stays on ${server.url}.`), said);
    assert.equal(settings().get('serverUrl'), server.url, 'the failed Connect… did not save its URL');

    // Back to "the server on this machine" by hand: none there yet, quietly not connected.
    await settings().update('serverUrl', undefined, vscode.ConfigurationTarget.Global);
    await until('not connected', () => !api.client() && api.contextKeys.connected === false, 30_000);
    // The server starts with that home: it writes its connection file (here, the test's server's own).
    mkdirSync(elsewhere);
    writeFileSync(file, readFileSync(join(process.env.ODOOOPS_HOME!, 'connection.json')));
    await until('connected by itself', () => api.client() && api.contextKeys.connected && api.store.projects.some((p) => p.slug === PROJECT), 30_000);
    assert.equal(api.client()!.target.url, server.url);
    // It stops (and removes its file): the tree is emptied, the welcome view says how to start one.
    rmSync(file);
    await until('disconnected by itself', () => !api.client() && api.contextKeys.connected === false && api.store.projects.length === 0, 30_000);

    await settings().update('home', undefined, vscode.ConfigurationTarget.Global);
    await until('the default home\'s server again', () => api.client() && api.contextKeys.connected && api.store.projects.length === 1, 30_000);
    assert.equal(api.store.error, null);
  });
});

describe('Builds in the Problems view', () => {
  it('a failed build\'s failing test is an Error problem at its file and line (the repository in a subfolder); a failure outside the workspace is not; its quick fix opens the log; a newer passing build clears it', async () => {
    // The repository as a subfolder of the workspace, with the module whose test fails.
    const root = vscode.workspace.workspaceFolders![0]!.uri;
    const file = vscode.Uri.joinPath(root, 'acme-addons', 'sale_build', 'tests', 'test_sale_build.py');
    await vscode.workspace.fs.writeFile(file, Buffer.from(['from odoo.tests import TransactionCase', '', '', 'class TestSaleBuild(TransactionCase):', '', '    def test_total(self):', '        self.assertEqual(1, 2)', ''].join('\n')));
    const failing = C.BuildResult.parse({
      revision: 'b'.repeat(40), odooVersion: '17.0', seconds: 73.4,
      tests: {
        modules: ['sale_build', 'other'], tests: 3, failed: 1, errors: 1, failures: [
          {
            outcome: 'failed', test: 'test_total (odoo.addons.sale_build.tests.test_sale_build.TestSaleBuild.test_total)', module: 'sale_build',
            file: 'sale_build/tests/test_sale_build.py', line: 7, message: 'AssertionError: 1 != 2',
            traceback: 'Traceback (most recent call last):\n  File "/srv/odooops/checkouts/demo/sale_build/tests/test_sale_build.py", line 7, in test_total\n    self.assertEqual(1, 2)\nAssertionError: 1 != 2',
          },
          { outcome: 'error', test: 'test_elsewhere (odoo.addons.other.tests.test_x.T.test_elsewhere)', module: 'other', file: 'other/tests/test_x.py', line: 3, message: "KeyError: 'x'", traceback: "Traceback (most recent call last):\nKeyError: 'x'" },
        ],
      },
    });
    // TEST FIXTURE: the rows a finished build run has (kind 'build', its status, its BuildResult), written
    // straight into the control plane: a real build needs real Odoo and minutes. test/build-run.test.ts runs
    // real builds on Odoo 17 and 19 and checks that the extension's problems logic turns the real run, as the
    // API gives it, into the problem on the failing line.
    const { Client } = createRequire(__filename)('pg') as typeof Pg;
    const db = new Client({ connectionString: process.env.ODOOOPS_IT_DATABASE_URL });
    await db.connect();
    const insertBuild = async (status: 'failed' | 'succeeded', result: C.BuildResult) => Number((await db.query<{ id: string }>(
      `insert into ops.runs (project_id, environment_id, kind, status, params, requested_by, attempts, max_attempts, started_at, finished_at, error, result)
       select p.id, e.id, 'build', $1, $2, $3, 1, 1, now() - interval '74 seconds', now(), $4, $5
       from ops.projects p join ops.environments e on e.project_id = p.id where p.slug = $6 and e.name = 'dev-feature' returning id`,
      [status, { revision: result.revision }, C.SERVICE_USER_ID, status === 'failed' ? `${result.tests.failed + result.tests.errors} of ${result.tests.tests} tests failed` : null, result, PROJECT],
    )).rows[0]!.id);
    const ours = () => vscode.languages.getDiagnostics().flatMap(([uri, list]) => list.filter((d) => d.source?.startsWith('OdooOps build #')).map((d) => ({ uri, d })));
    try {
      const id = await insertBuild('failed', failing);
      // Through the project feed (Realtime), as a real build's end arrives.
      const [d, ...more] = await until('the failure in the Problems view', () => vscode.languages.getDiagnostics(file).length > 0 && vscode.languages.getDiagnostics(file), 60_000);
      assert.equal(more.length, 0);
      assert.equal(d!.severity, vscode.DiagnosticSeverity.Error);
      assert.equal(d!.range.start.line, 6, 'line 7 of the file');
      assert.equal(d!.range.start.character, 8, 'from its first non-blank character');
      assert.equal(d!.message.split('\n')[0], 'test_total failed: AssertionError: 1 != 2');
      assert.ok(d!.message.includes('    self.assertEqual(1, 2)'), 'the hover carries the traceback\'s last lines');
      assert.equal(d!.source, `OdooOps build #${id} (dev-feature)`);
      const code = d!.code as { value: string; target: vscode.Uri };
      assert.equal(code.value, `build #${id}`);
      // The failure whose file the workspace lacks is no problem anywhere: the log panel lists it.
      assert.deepEqual(ours().map((o) => o.uri.path), [file.path]);
      assert.deepEqual(api.testProblems.elsewhere.map((e) => [e.runId, e.file]), [[id, 'other/tests/test_x.py']]);
      // The code and the related information open the build's report: every traceback, whole.
      const report = await vscode.workspace.openTextDocument(d!.relatedInformation![0]!.location.uri);
      assert.ok(report.getText().includes('    AssertionError: 1 != 2') && report.getText().includes("    KeyError: 'x'"), report.getText());
      assert.equal(code.target.with({ fragment: '' }).toString(), report.uri.toString());
      assert.match(report.lineAt(d!.relatedInformation![0]!.location.range.start.line).text, /^FAIL: test_total /);
      // The quick fix opens the build's log panel (code actions are asked of an open document).
      await vscode.window.showTextDocument(file);
      const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', file, d!.range);
      const open = actions.find((a) => a.title === `Open the log of build #${id}`);
      assert.ok(open?.command, actions.map((a) => a.title).join(', '));
      await vscode.commands.executeCommand(open.command.command, ...(open.command.arguments ?? []));
      await until('the build\'s log panel', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).some((t) => t.input instanceof vscode.TabInputWebview && t.label.includes(`#${id}`)), 30_000);

      // Signed out (the store emptied, as signing out does): no problems; the store read again: back. (Not
      // "Refresh": it re-subscribes the live feed, and a build finishing before the new channel has joined
      // would be broadcast to no one.)
      api.store.reset();
      await until('no problems once signed out', () => ours().length === 0, 10_000);
      await api.store.load();
      await until('the problem again', () => vscode.languages.getDiagnostics(file).length === 1, 30_000);

      // The next push's build passes: the environment's problems go.
      const passed = await insertBuild('succeeded', { ...failing, revision: 'c'.repeat(40), tests: { modules: ['sale_build', 'other'], tests: 3, failed: 0, errors: 0, failures: [] } });
      assert.ok(passed > id);
      await until('the problem gone', () => vscode.languages.getDiagnostics(file).length === 0, 60_000);
      assert.deepEqual(ours(), []);
      assert.deepEqual(api.testProblems.elsewhere, []);
    } finally {
      await db.end();
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });
});
