// Git push → environments, end to end, on real Odoo `version` (17.0: test/deploy.test.ts, 19.0:
// test/deploy-19.test.ts): real git repositories (a bare remote, commits that change a small real addon
// and bump its manifest version), real signed webhook deliveries (valid, tampered, replayed), deploy runs
// on a real worker with real odoo-bin (../shared/odoo) on a real Odoo database of that version: the addon
// is installed with -i, updated with -u (a new field and view must land in the database), broken on
// purpose (a data file naming a field that does not exist; a controller that fails /web/health), rolled
// back; and GitHub's API played by a local HTTP server that records the calls (a named test double: GitHub
// cannot be reached from here). A branch's development environment gets a new database made by odoo-bin,
// with demo data on both versions. On 17.0 only (what does not depend on Odoo's version, kept off the
// 19.0 run for its time on a 2-core CI): approvals, development environments from the editor, staging's
// fresh mode and the ssh target, which runs the same real odoo-bin on "another host": a real sshd on
// loopback (root@127.0.0.1, the run user's key), the host's own config file, checkout, restart script and
// data directory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { sign } from '@octokit/webhooks-methods';
import { freePort } from '../../server/db/embedded.ts';
import { shellQuote } from '../../server/deploy/ssh-odoo.ts';
import { fingerprintDb } from './debian-postgres.ts';
import { eventually, freePortRange, chownToRunUser } from './control-plane.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './odoo-project.ts';
import { startLoopbackSshd } from './sshd.ts';
import { installOdoo, type OdooInstall } from './real-odoo.ts';

/** The deploy tests on a real Odoo `version` (one test file per version calls this). */
export function deployOdooSuite(version: '17.0' | '19.0'): void {
  const SECRET = 'webhook-secret-for-tests';
  let p: OdooProject;
  let odoo: OdooInstall;
  let github: Server;
  const calls: { method: string; url: string; auth: string; body: any }[] = [];
  let work: string;
  let remote: string;
  let prodPort: number;
  /** How long a deploy waits for Odoo's health check (real Odoo starts in 2-5 s; this machine is shared). */
  const HEALTH_SECONDS = 30;
  /** The tests whose subject is not Odoo's version run on 17.0 alone. */
  const test17: typeof test = version === '17.0' ? test : (() => {}) as unknown as typeof test;


  /** The GitHub API test double: records every call, answers like GitHub for the ones OdooOps makes. */
  async function startGitHubDouble(): Promise<string> {
    let deployments = 0;
    github = createServer(async (req, res) => {
      let text = '';
      for await (const c of req) text += c;
      const body = text ? JSON.parse(text) : null;
      calls.push({ method: req.method!, url: req.url!, auth: String(req.headers.authorization ?? ''), body });
      const created = (data: object) => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(data));
      if (/^\/repos\/[^/]+\/[^/]+\/deployments$/.test(req.url!)) return created({ id: ++deployments });
      return created({ id: 1 });
    });
    await new Promise<void>((r) => github.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(github.address() as AddressInfo).port}`;
  }

  const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { env: { ...process.env, GIT_AUTHOR_NAME: 'Dev', GIT_AUTHOR_EMAIL: 'dev@example.invalid', GIT_COMMITTER_NAME: 'Dev', GIT_COMMITTER_EMAIL: 'dev@example.invalid' } }).toString().trim();
  function commit(files: Record<string, string | null>, message: string, branch = 'main'): string {
    git('checkout', '-q', '-B', branch);
    for (const [f, content] of Object.entries(files)) {
      if (content === null) rmSync(join(work, f), { force: true });
      else {
        mkdirSync(join(work, f, '..'), { recursive: true });
        writeFileSync(join(work, f), content);
      }
    }
    git('add', '-A');
    git('commit', '-q', '-m', message);
    git('push', '-q', '--force', 'origin', branch);
    return git('rev-parse', 'HEAD');
  }
  const manifest = (version: string, extra = '') => `{\n    'name': 'Shop core',\n    'version': '${version}',\n    'depends': ['base'],\n    'license': 'LGPL-3',${extra}\n}\n`;
  /** The addon's Python: a field on res.partner (shop_loyalty too from 1.1), a controller that tells which release.txt Odoo loaded. */
  const partnerPy = (loyalty: boolean) => `from odoo import fields, models\n\n\nclass ResPartner(models.Model):\n    _inherit = 'res.partner'\n\n    shop_tier = fields.Char()\n${loyalty ? '    shop_loyalty = fields.Integer()\n' : ''}`;
  const ADDON = {
    'shop_core/__init__.py': 'from . import models, controllers\n',
    'shop_core/models/__init__.py': 'from . import partner\n',
    'shop_core/models/partner.py': partnerPy(false),
    'shop_core/controllers/__init__.py': 'from . import main\n',
    // Read when Odoo imports the module: what /shop_core/release answers changes only when Odoo restarts.
    'shop_core/controllers/main.py': `import os\n\nfrom odoo import http\n\nwith open(os.path.join(os.path.dirname(__file__), '..', '..', 'release.txt')) as f:\n    RELEASE = f.read()\n\n\nclass Release(http.Controller):\n    @http.route('/shop_core/release', type='http', auth='none')\n    def release(self):\n        return RELEASE\n`,
  };
  /** 1.1's view: the new field on the partner form. */
  const VIEW = `<odoo>\n  <record id="view_partner_form_shop" model="ir.ui.view">\n    <field name="name">res.partner.form.shop</field>\n    <field name="model">res.partner</field>\n    <field name="inherit_id" ref="base.view_partner_form"/>\n    <field name="arch" type="xml">\n      <field name="vat" position="after"><field name="shop_loyalty"/></field>\n    </field>\n  </record>\n</odoo>\n`;
  /** A controller that makes /web/health fail (a real way for a code-only change to break Odoo). */
  const SICK = `from odoo import http\nfrom odoo.addons.web.controllers.home import Home\n\n\nclass SickHome(Home):\n    @http.route()\n    def health(self):\n        return http.request.make_response('{"status": "fail"}', [('Content-Type', 'application/json')], status=500)\n`;

  let deliveries = 0;
  async function deliver(event: string, payload: object, opts: { id?: string; tamper?: boolean; unsigned?: boolean } = {}) {
    const body = JSON.stringify(payload);
    const signature = await sign(SECRET, body);
    const sent = opts.tamper ? body.replace('"main"', '"evil"').replace('refs/heads/', 'refs/heads/x') : body;
    const res = await fetch(`${p.cp.server.url}/api/webhooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': opts.id ?? `d-${++deliveries}-${process.pid}`,
        ...(opts.unsigned ? {} : { 'x-hub-signature-256': signature }),
      },
      body: sent,
    });
    return { status: res.status, body: await res.json() as any };
  }
  const push = (branch: string, sha: string, id?: string) => deliver('push', { ref: `refs/heads/${branch}`, after: sha, repository: { full_name: 'acme/addons' } }, { id });

  async function runOf(id: number) {
    return p.finished(id, 120_000);
  }
  const health = async (port: number) => (await fetch(`http://127.0.0.1:${port}/web/health`).catch(() => null))?.status ?? 0;
  const release = async (port: number) => (await (await fetch(`http://127.0.0.1:${port}/shop_core/release`)).text()).trim();
  const since = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

  before(async () => {
    const githubUrl = await startGitHubDouble();
    const [project, installed] = await Promise.all([startOdooProject({
      slug: 'git',
      generate: {},
      real: { git_prod: { version, kind: 'plain' } },
      envs: [
        { name: 'production', stage: 'production', db: 'git_prod', url: 'https://erp.acme.example' },
        { name: 'staging', stage: 'staging', db: 'git_staging', url: 'https://staging.acme.example' },
      ],
      server: { githubWebhookSecret: SECRET, githubToken: 'ghp_testdouble', githubApiUrl: githubUrl },
    }), installOdoo(version)]);
    p = project;
    odoo = installed;
    remote = join(p.scratch, 'addons.git');
    work = join(p.scratch, 'addons');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', remote]);
    execFileSync('git', ['clone', '-q', remote, work]);
    // The operator's registry: real odoo-bin as a local runtime (its own addons after the checkout; no
    // cron threads, so that the database stands still between fingerprints) with a range of ports, and the
    // project's repository. Odoo's data directory is the filestore root's parent: its sessions live there.
    mkdirSync(join(p.scratch, 'sessions'));
    chownToRunUser(join(p.scratch, 'sessions'));
    await p.addInfra({
      runtimes: { 'local-odoo': {
        kind: 'local', odooBin: odoo.odooBin, addonsPath: [join(odoo.dir, 'addons'), join(odoo.dir, 'odoo', 'addons')],
        odooArgs: ['--max-cron-threads', '0', '--http-interface', '127.0.0.1', '--log-level', 'info'],
        httpPorts: await freePortRange(12), healthTimeoutSeconds: HEALTH_SECONDS, projects: ['git'],
      } },
      repositories: { addons: { url: remote, projects: ['git'] } },
    });
    const settings = await p.admin.call('PUT', '/api/projects/git/git', {
      repoUrl: remote, githubRepo: 'acme/addons', productionBranch: 'main', stagingBranches: ['staging'], productionNeedsApproval: false,
      devUrlTemplate: 'https://{env}.dev.acme.example',
    });
    assert.equal(settings.status, 200, JSON.stringify(settings.body));
    for (const env of ['production', 'staging']) {
      const r = await p.admin.call('PUT', `/api/projects/git/environments/${env}/deploy-target`, { runtime: 'local-odoo' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      if (env === 'production') prodPort = r.body.runtime.httpPort;
    }
    await p.cp.pool.query(`update ops.environments set branch = 'staging' where name = 'staging'`);
  });
  after(async () => {
    // Stop the Odoo processes the local deploys left running (their pids are kept beside their logs).
    const odoo = join(p.cp.server.home, 'work', 'odoo');
    for (const env of existsSync(odoo) ? readdirSync(odoo) : []) {
      const pidFile = join(odoo, env, 'odoo.pid');
      if (existsSync(pidFile)) {
        try {
          process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
        } catch {}
      }
    }
    github?.closeAllConnections();
    github?.close();
    await p?.close();
  });

  test('webhooks: unsigned and tampered deliveries are refused before parsing; a replayed delivery does nothing twice', async () => {
    const sha = commit({ 'shop_core/__manifest__.py': manifest(`${version}.1.0`), ...ADDON, 'release.txt': 'r1\n' }, 'shop_core 1.0');
    assert.equal((await deliver('push', { ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/addons' } }, { unsigned: true })).status, 401);
    const tampered = await deliver('push', { ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/addons' } }, { tamper: true });
    assert.equal(tampered.status, 401);
    assert.match(tampered.body.error.message, /X-Hub-Signature-256 of this delivery does not match/);
    const runsBefore = (await p.cp.pool.query(`select count(*)::int as n from ops.runs where kind = 'deploy'`)).rows[0].n;
    assert.equal(runsBefore, 0, 'nothing was queued by the refused deliveries');

    const first = await push('main', sha, 'replayed-delivery-1');
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.equal(first.body.environment, 'production');
    assert.equal(first.body.runs.length, 1);
    const again = await push('main', sha, 'replayed-delivery-1');
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal((await p.cp.pool.query(`select count(*)::int as n from ops.runs where kind = 'deploy'`)).rows[0].n, 1, 'the replay queued nothing');

    const t = performance.now();
    const run = await runOf(first.body.runs[0]);
    assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
    console.log(`# first deploy (odoo-bin -i shop_core, start, health): ${since(t)}`);
    const log = await p.logText(run.id);
    assert.match(log, new RegExp(`first deploy of ${sha.slice(0, 7)}: no module version changed; install shop_core`));
    assert.match(log, /update\.log: .* INFO git_prod odoo\.modules\.loading: updating modules list/, 'real odoo-bin found the new addon');
    assert.match(log, new RegExp(`^update\\.log: .* INFO \\S+ odoo: Odoo version ${version.replace('.', '\\.')}\\s*$`, 'm'), `odoo-bin ${version} did it`);
    assert.equal(await health(prodPort), 200);
    assert.equal(await release(prodPort), 'r1');
    assert.deepEqual(await p.sql('git_prod', `select latest_version, state from ir_module_module where name = 'shop_core'`), [{ latest_version: `${version}.1.0`, state: 'installed' }]);
    assert.deepEqual(await p.sql('git_prod', `select column_name from information_schema.columns where table_name = 'res_partner' and column_name like 'shop_%'`), [{ column_name: 'shop_tier' }],
      'the addon\'s field is a column');
    assert.equal((await p.cp.pool.query(`select deployed_revision from ops.environments where name = 'production'`)).rows[0].deployed_revision, sha);
  });

  test('production: a code-only push restarts without a backup; a version bump takes the pre-deploy backup and updates the module; GitHub hears of each', async () => {
    const backups = async () => (await p.cp.pool.query(`select count(*)::int as n from ops.backups where kind = 'pre-deploy'`)).rows[0].n as number;
    const before = await backups();
    const c2 = commit({ 'release.txt': 'r2\n', 'shop_core/models/partner.py': `# code only\n${partnerPy(false)}` }, 'code only');
    const r2 = await runOf((await push('main', c2)).body.runs[0]);
    assert.equal(r2.status, 'succeeded', r2.error ?? '');
    const codeOnly = await p.logText(r2.id);
    assert.match(codeOnly, /no module version changed$/m);
    assert.doesNotMatch(codeOnly, /update\.log:/, 'odoo-bin updated nothing');
    assert.equal(await backups(), before, 'no backup for a code-only change');
    assert.equal(await release(prodPort), 'r2');

    // 1.1: a new field and a view showing it; -u must put both into the database.
    const c3 = commit({
      'shop_core/__manifest__.py': manifest(`${version}.1.1`, "\n    'data': ['views/partner_views.xml'],"), 'shop_core/models/partner.py': partnerPy(true),
      'shop_core/views/partner_views.xml': VIEW, 'release.txt': 'r3\n',
    }, 'shop_core 1.1');
    const t = performance.now();
    const r3 = await runOf((await push('main', c3)).body.runs[0]);
    assert.equal(r3.status, 'succeeded', `${r3.error}\n${await p.logText(r3.id)}`);
    console.log(`# deploy with an update (pre-deploy backup, odoo-bin -u shop_core, restart, health): ${since(t)}`);
    const log = await p.logText(r3.id);
    assert.match(log, /update shop_core/);
    assert.match(log, /module versions or requirements changed: taking the pre-deploy backup first/);
    assert.match(log, /update\.log: .* INFO git_prod odoo\.modules\.loading: loading shop_core\/views\/partner_views\.xml/);
    assert.equal(await backups(), before + 1);
    assert.deepEqual(await p.sql('git_prod', `select latest_version from ir_module_module where name = 'shop_core'`), [{ latest_version: `${version}.1.1` }]);
    assert.deepEqual(await p.sql('git_prod', `select column_name from information_schema.columns where table_name = 'res_partner' and column_name like 'shop_%' order by 1`),
      [{ column_name: 'shop_loyalty' }, { column_name: 'shop_tier' }], 'the new field is a column');
    const view = await p.sql('git_prod', `select v.arch_db::text as arch from ir_ui_view v join ir_model_data d on d.model = 'ir.ui.view' and d.res_id = v.id
      where d.module = 'shop_core' and d.name = 'view_partner_form_shop'`);
    assert.equal(view.length, 1, 'the new view is in the database');
    assert.match(view[0].arch, /shop_loyalty/);
    assert.equal(await release(prodPort), 'r3');

    // GitHub (the double): a pending then a success status per commit, a deployment with its URL.
    const statuses = calls.filter((c) => c.url === `/repos/acme/addons/statuses/${c3}`);
    assert.deepEqual(statuses.map((s) => [s.body.state, s.body.context]), [['pending', 'ci/odooops (production)'], ['success', 'ci/odooops (production)']]);
    assert.equal(statuses[1]!.body.target_url, 'https://erp.acme.example');
    assert.ok(calls.every((c) => c.auth === 'token ghp_testdouble'), 'the configured token, and only it');
    const deployments = calls.filter((c) => c.url === '/repos/acme/addons/deployments' && c.body.ref === c3);
    assert.deepEqual(deployments.map((d) => [d.body.environment, d.body.production_environment]), [['production', true], ['production', true]]);
    assert.ok(calls.some((c) => /\/deployments\/\d+\/statuses$/.test(c.url) && c.body.state === 'success' && c.body.environment_url === 'https://erp.acme.example'));

    // A requirements.txt change alone also takes the pre-deploy backup (Odoo.sh's rule; not Odoo's version's).
    if (version === '17.0') {
      const reqs = commit({ 'requirements.txt': 'phonenumbers==8.13.0\n' }, 'a Python dependency');
      const rr = await runOf((await push('main', reqs)).body.runs[0]);
      assert.equal(rr.status, 'succeeded', rr.error ?? '');
      assert.match(await p.logText(rr.id), /no module version changed; requirements changed/);
      assert.equal(await backups(), before + 2);
    }
  });

  test('a failed update rolls back code and database (pre-deploy backup) and keeps the failed log', async () => {
    const c3 = (await p.cp.pool.query(`select deployed_revision from ops.environments where name = 'production'`)).rows[0].deployed_revision as string;
    const dbBefore = await fingerprintDb(p.odooPg, 'git_prod');
    // 1.2 loads a data file that names a field res.partner does not have: odoo-bin -u fails halfway.
    const c4 = commit({
      'shop_core/__manifest__.py': manifest(`${version}.1.2`, "\n    'data': ['views/partner_views.xml', 'data/broken.xml'],"),
      'shop_core/data/broken.xml': '<odoo>\n  <record id="broken_partner" model="res.partner">\n    <field name="name">Broken</field>\n    <field name="no_such_field">x</field>\n  </record>\n</odoo>\n',
      'release.txt': 'r4\n',
    }, 'shop_core 1.2, broken');
    const t = performance.now();
    const run = await runOf((await push('main', c4)).body.runs[0]);
    assert.equal(run.status, 'failed');
    console.log(`# failed update and its rollback (restore of the pre-deploy backup, restart): ${since(t)}`);
    assert.match(run.error!, new RegExp(`deploy of ${c4.slice(0, 7)} to production failed: the module update failed \\(odoo-bin exited with \\d+\\); code back at ${c3.slice(0, 7)}, database restored from the pre-deploy backup [0-9a-f-]{36}, Odoo running again`));
    const log = await p.logText(run.id);
    assert.match(log, /update\.log: .*Invalid field 'no_such_field'/, 'the failed update\'s log is kept');
    // Whatever odoo-bin wrote before failing, the restore took it back.
    assert.deepEqual(await fingerprintDb(p.odooPg, 'git_prod'), dbBefore);
    assert.equal(await health(prodPort), 200);
    assert.equal(await release(prodPort), 'r3', 'the previous code runs');
    assert.equal((await p.cp.pool.query(`select deployed_revision from ops.environments where name = 'production'`)).rows[0].deployed_revision, c3);
    assert.ok(calls.some((c) => c.url === `/repos/acme/addons/statuses/${c4}` && c.body.state === 'failure'));

    // A health check that fails after a code-only change rolls back too.
    // A code-only change (same version as 1.1) whose controller makes /web/health answer 500.
    const c5 = commit({
      'shop_core/__manifest__.py': manifest(`${version}.1.1`, "\n    'data': ['views/partner_views.xml'],"), 'shop_core/data/broken.xml': null,
      'shop_core/controllers/__init__.py': 'from . import main, sick\n', 'shop_core/controllers/sick.py': SICK, 'release.txt': 'r5\n',
    }, 'breaks health');
    const sick = await runOf((await push('main', c5)).body.runs[0]);
    assert.equal(sick.status, 'failed');
    assert.match(sick.error!, new RegExp(`Odoo did not answer http://127\\.0\\.0\\.1:\\d+/web/health with 200 within ${HEALTH_SECONDS} s \\(last: HTTP 500\\).*code back at`));
    assert.equal(await release(prodPort), 'r3');
    assert.equal(await health(prodPort), 200);
    commit({ 'shop_core/controllers/__init__.py': 'from . import main\n', 'shop_core/controllers/sick.py': null }, 'health fixed');
  });

  test17('production deploys wait for an approval when the project asks for one', async () => {
    assert.equal((await p.admin.call('PUT', '/api/projects/git/git', { productionNeedsApproval: true })).status, 200);
    const sha = git('rev-parse', 'HEAD');
    const r = await push('main', sha);
    assert.equal(r.status, 202);
    assert.ok(r.body.approval, JSON.stringify(r.body));
    assert.equal(r.body.runs, undefined, 'nothing deploys before someone approves');
    const direct = await p.queue('production', 'deploy', { revision: sha, branch: 'main' });
    assert.equal(direct.status, 403);
    assert.match(direct.body.error.message, /a deploy into production needs an approval/);
    assert.equal((await p.admin.call('POST', `/api/approvals/${r.body.approval}/approve`)).status, 200);
    const q = await p.queue('production', 'deploy', { revision: sha, branch: 'main' }, r.body.approval);
    assert.equal(q.status, 201, JSON.stringify(q.body));
    assert.equal((await runOf(q.body.id)).status, 'succeeded');
    assert.equal((await p.admin.call('PUT', '/api/projects/git/git', { productionNeedsApproval: false })).status, 200);
  });

  test('branches become environments: a development environment on the first push, its URL on the pull request, gone with the branch', async () => {
    const sha = commit({ 'shop_sale/__manifest__.py': `{'name': 'Shop sale', 'version': '${version}.1.0', 'depends': ['shop_core'], 'license': 'LGPL-3'}\n`, 'shop_sale/__init__.py': '', 'release.txt': 'feature\n' }, 'new module', 'feature/Login-Fix');
    const r = await push('feature/Login-Fix', sha);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.environment, 'dev-feature-login-fix');
    assert.equal(r.body.created, true);
    const t = performance.now();
    const run = await runOf(r.body.runs[0]);
    assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
    console.log(`# first deploy of a branch (odoo-bin creates its database: base with demo data, shop_core, shop_sale): ${since(t)}`);
    const env = (await p.admin.call('GET', '/api/projects/git/environments/dev-feature-login-fix')).body;
    assert.equal(env.stage, 'development');
    assert.equal(env.branch, 'feature/Login-Fix');
    assert.equal(env.url, 'https://dev-feature-login-fix.dev.acme.example');
    const row = (await p.cp.pool.query(`select db_name, runtime, http_port from ops.environments where name = 'dev-feature-login-fix'`)).rows[0];
    assert.equal(row.runtime, 'local-odoo', 'production\'s runtime, on a port of its own');
    assert.equal(row.db_name, 'git_prod_dev_feature_login_fix');
    assert.deepEqual((await p.sql(row.db_name, `select name from ir_module_module where state = 'installed' and name like 'shop%' order by name`)).map((x) => x.name), ['shop_core', 'shop_sale'],
      `a fresh database with the branch's modules:\n${await p.logText(run.id)}`);
    assert.equal((await p.sql(row.db_name, `select count(*)::int as n from res_partner`))[0].n > 0, true, 'made by Odoo');
    // As Odoo.sh builds a branch: with demo data, which 19.0 loads only when told (--with-demo) and 17.0 unless told not to.
    assert.deepEqual(await p.sql(row.db_name, `select name, demo from ir_module_module where name in ('base', 'shop_core') order by name`),
      [{ name: 'base', demo: true }, { name: 'shop_core', demo: true }], 'a new database with demo data');
    assert.equal(await release(row.http_port), 'feature');
    // A second push to the branch deploys onto the same environment.
    const again = await push('feature/Login-Fix', commit({ 'release.txt': 'feature 2\n' }, 'more', 'feature/Login-Fix'));
    assert.equal(again.body.created, false);
    assert.equal((await runOf(again.body.runs[0])).status, 'succeeded');

    const pr = await deliver('pull_request', { action: 'opened', number: 7, repository: { full_name: 'acme/addons' }, pull_request: { head: { ref: 'feature/Login-Fix', sha } } });
    assert.equal(pr.status, 202);
    const comment = calls.find((c) => c.url === '/repos/acme/addons/issues/7/comments');
    assert.match(comment?.body.body ?? '', /development environment `dev-feature-login-fix` for `feature\/Login-Fix`: https:\/\/dev-feature-login-fix\.dev\.acme\.example/);

    const del = await deliver('delete', { ref: 'feature/Login-Fix', ref_type: 'branch', repository: { full_name: 'acme/addons' } });
    assert.equal(del.status, 202);
    const destroyed = await runOf(del.body.runs[0]);
    assert.equal(destroyed.status, 'succeeded', destroyed.error ?? '');
    assert.deepEqual(await p.sql('postgres', `select datname from pg_database where datname = '${row.db_name}'`), [], 'its database is dropped');
    assert.equal(await health(row.http_port), 0, 'its Odoo is stopped');
    const names = ((await p.admin.call('GET', '/api/projects/git/environments')).body as { name: string }[]).map((e) => e.name);
    assert.ok(!names.some((n) => n.startsWith('dev-feature-login-fix')), 'no longer listed');
    assert.equal((await p.admin.call('GET', `/api/runs/${run.id}`)).status, 200, 'its runs and logs stay readable');
  });

  test17('from the editor: a branch becomes a development environment deployed at its newest commit; repeating it queues another deploy; who may and what is refused', async () => {
    const sha = commit({ 'release.txt': 'editor\n' }, 'editor branch', 'feature/editor');
    const r = await p.admin.call('POST', '/api/projects/git/dev-environments', { branch: 'feature/editor' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.created, true);
    assert.equal(r.body.environment.name, 'dev-feature-editor');
    assert.equal(r.body.environment.url, 'https://dev-feature-editor.dev.acme.example');
    assert.equal(r.body.run.kind, 'deploy');
    assert.deepEqual(r.body.run.params, { branch: 'feature/editor' }, 'no revision: the worker deploys the branch as it finds it');
    const run = await runOf(r.body.run.id);
    assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
    assert.equal((run.result as { revision: string }).revision, sha);
    assert.match(await p.logText(run.id), new RegExp(`feature/editor is at ${sha.slice(0, 7)}`));
    const port = (await p.cp.pool.query(`select http_port from ops.environments where name = 'dev-feature-editor'`)).rows[0].http_port;
    assert.equal(await release(port), 'editor');
    const audit = (await p.admin.call('GET', '/api/projects/git/audit?limit=50')).body as { action: string; actor: string; target: string }[];
    assert.ok(audit.some((a) => a.action === 'environments.insert' && a.actor === p.admin.id), 'created as the user who asked');

    // Again: the same environment, a new deploy (a newer commit).
    const sha2 = commit({ 'release.txt': 'editor 2\n' }, 'more', 'feature/editor');
    const again = await p.admin.call('POST', '/api/projects/git/dev-environments', { branch: 'feature/editor' });
    assert.equal(again.status, 200);
    assert.equal(again.body.created, false);
    assert.equal(((await runOf(again.body.run.id)).result as { revision: string }).revision, sha2);
    assert.equal(await release(port), 'editor 2');

    // A branch that is not in the repository: the deploy fails saying so; nothing else changes.
    const ghost = await p.admin.call('POST', '/api/projects/git/dev-environments', { branch: 'feature/not-pushed' });
    assert.equal(ghost.status, 201);
    const failed = await runOf(ghost.body.run.id);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /the branch feature\/not-pushed is not in .*push it first/);

    // Bad input and roles.
    for (const branch of ['x;touch /tmp/pwned', '--upload-pack=evil', '']) {
      const bad = await p.admin.call('POST', '/api/projects/git/dev-environments', { branch });
      assert.equal(bad.status, 400, `${branch}: ${JSON.stringify(bad.body)}`);
    }
    // Another branch whose name makes the same environment name gets one of its own (not pushed: its deploy fails).
    const clash = await p.admin.call('POST', '/api/projects/git/dev-environments', { branch: 'Feature/Editor' });
    assert.equal(clash.status, 201, JSON.stringify(clash.body));
    assert.equal(clash.body.environment.name, 'dev-feature-editor-2');
    const dbs = (await p.cp.pool.query(`select db_name from ops.environments where name in ('dev-feature-editor', 'dev-feature-editor-2')`)).rows;
    assert.equal(new Set(dbs.map((r) => r.db_name)).size, 2, JSON.stringify(dbs));
    assert.equal((await runOf(clash.body.run.id)).status, 'failed');
    const viewer = await p.cp.user();
    await p.cp.pool.query(`insert into ops.project_members (project_id, user_id, role) select id, $1, 'viewer' from ops.projects where slug = 'git'`, [viewer.id]);
    const refused = await viewer.call('POST', '/api/projects/git/dev-environments', { branch: 'feature/viewer' });
    assert.equal(refused.status, 403);
    assert.match(refused.body.error.message, /cannot create development environments; a developer or an admin can/);
    assert.equal((await p.cp.pool.query(`select count(*)::int as n from ops.environments where branch = 'feature/viewer'`)).rows[0].n, 0);
    // What a worker fetches and runs is an admin's to set.
    const git = await viewer.call('PUT', '/api/projects/git/git', { repoUrl: '/tmp/elsewhere.git' });
    assert.equal(git.status, 403);
    assert.match(git.body.error.message, /only admins of "git" can change its git settings; you are viewer/);
    const target = await viewer.call('PUT', '/api/projects/git/environments/dev-feature-editor/deploy-target', { runtime: 'local-odoo' });
    assert.equal(target.status, 403);
    assert.match(target.body.error.message, /only admins of "git" can choose how dev-feature-editor runs Odoo/);
  });

  test17('staging "fresh" mode re-clones production before deploying; unsafe branch names never reach git or a shell', async () => {
    assert.equal((await p.admin.call('PUT', '/api/projects/git/git', { stagingMode: 'fresh' })).status, 200);
    const sha = commit({ 'release.txt': 'staging\n' }, 'staging build', 'staging');
    const r = await push('staging', sha);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.runs.length, 2, 'a clone, then the deploy');
    const [clone, deploy] = [await runOf(r.body.runs[0]), await runOf(r.body.runs[1])];
    assert.equal(clone.kind, 'clone');
    assert.equal(clone.status, 'succeeded', clone.error ?? '');
    assert.equal(deploy.status, 'succeeded', `${deploy.error}\n${await p.logText(deploy.id)}`);
    assert.deepEqual(await p.sql('git_staging', `select value from ir_config_parameter where key = 'database.is_neutralized'`), [{ value: 'true' }]);
    assert.deepEqual(await p.sql('git_staging', `select state from ir_module_module where name = 'shop_core'`), [{ state: 'installed' }], 'real Odoo runs the addon on the fresh clone');

    const marker = join(p.scratch, 'pwned');
    const evil = await push(`x;touch ${marker}`, sha);
    assert.equal(evil.status, 202);
    assert.match(evil.body.ignored, /branch name not accepted/);
    const dash = await push('--upload-pack=touch', sha);
    assert.match(dash.body.ignored, /branch name not accepted/);
    assert.ok(!existsSync(marker));
    await eventually('no run for them', async () => (await p.cp.pool.query(`select count(*)::int as n from ops.runs where params->>'branch' like '%touch%'`)).rows[0].n === 0);
  });

  test17('shell quoting for the ssh target: what the remote shell receives is exactly the arguments', () => {
    const args = ["plain", "it's", 'a b', '$(touch /tmp/x)', '`id`', 'semi;colon', 'new\\nline?', '', "'", '--flag=1'];
    const echoed = execFileSync('sh', ['-c', `printf '%s\\n' ${args.map(shellQuote).join(' ')}`]).toString();
    assert.deepEqual(echoed.split('\n').slice(0, -1), args);
  });

  /**
   * The ssh test's "restart" (what `systemctl restart odoo` is on a real host): stops the odoo-bin whose pid
   * is in $1 (waiting until it is gone, a zombie counting as gone: nothing here need reap it), then starts the
   * rest of its arguments detached from the ssh session, its pid in $1 and its output beside it.
   */
  const RESTART_SCRIPT = `#!/bin/sh
  set -eu
  pidfile=$1; shift
  alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null || true; i=0
    while alive "$pid"; do i=$((i + 1)); if [ $i -gt 150 ]; then kill -9 "$pid" 2>/dev/null || true; break; fi; sleep 0.1; done
  fi
  setsid "$@" >>"$pidfile.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  `;

  test17('ssh target: the same steps on another host over the system\'s ssh (a real sshd on loopback), rollback included', async () => {
    // An sshd of our own: its host key, one authorized client key, root by key only.
    const dir = join(p.scratch, 'sshd');
    const { port: sshPort, process: sshd } = await startLoopbackSshd(dir);
    // The "other host": its checkout, its Odoo's config file and data directory, the pid of the Odoo it serves.
    const host = join(p.scratch, 'remote');
    const pidFile = join(host, 'odoo.pid');
    const remotePid = () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0);
    try {
      assert.equal((await p.admin.call('PUT', '/api/projects/git/git', { stagingMode: 'update' })).status, 200);
      mkdirSync(join(host, 'data'), { recursive: true });
      // The host's Odoo knows its database server and password from its own config file, not from OdooOps.
      const conf = join(host, 'odoo.conf');
      writeFileSync(conf, `[options]\ndb_host = ${p.odooPg.host}\ndb_port = ${p.odooPg.port}\ndb_user = ${ODOO_ROLE}\ndb_password = ${p.password}\ndata_dir = ${join(host, 'data')}\n`);
      writeFileSync(join(host, 'restart-odoo.sh'), RESTART_SCRIPT, { mode: 0o755 });
      // ssh runs as the run user: its key is theirs (as an operator sets up the worker's deploy key).
      chownToRunUser(join(dir, 'client_key'));
      const httpPort = await freePort();
      const checkout = join(host, 'addons');
      const odooAddons = [join(odoo.dir, 'addons'), join(odoo.dir, 'odoo', 'addons')];
      const target = {
        kind: 'ssh', host: `root@127.0.0.1`, port: sshPort, identityFile: join(dir, 'client_key'), checkoutDir: checkout, projects: ['git'],
        odooBin: odoo.odooBin, odooArgs: ['-c', conf], odooAddonsPath: odooAddons,
        restart: [join(host, 'restart-odoo.sh'), pidFile, odoo.odooBin, '-c', conf, '--addons-path', [checkout, ...odooAddons].join(','),
          '-d', 'git_staging', '--db-filter', '^git_staging$', '--http-interface', '127.0.0.1', '--http-port', String(httpPort), '--workers', '0', '--max-cron-threads', '0'],
        healthUrl: `http://127.0.0.1:${httpPort}/web/health`, healthTimeoutSeconds: HEALTH_SECONDS,
      };
      // The host and its command lines are the operator's (the registry); the environment names the runtime.
      await p.addInfra({ runtimes: { 'ssh-staging': target } });
      const portless = await p.admin.call('PUT', '/api/projects/git/environments/staging/deploy-target', { runtime: 'ssh-staging', httpPort: 9999 });
      assert.equal(portless.status, 400, JSON.stringify(portless.body));
      assert.match(portless.body.error.message, /reached over ssh: its port is the operator's/);
      const set = await p.admin.call('PUT', '/api/projects/git/environments/staging/deploy-target', { runtime: 'ssh-staging' });
      assert.equal(set.status, 200, JSON.stringify(set.body));

      // 2.0: a new field, and the controller's release text; -u over ssh must put the field into the database.
      const good = commit({
        'shop_core/__manifest__.py': manifest(`${version}.2.0`, "\n    'data': ['views/partner_views.xml'],"), 'shop_core/views/partner_views.xml': VIEW,
        'shop_core/models/partner.py': `${partnerPy(true)}    shop_channel = fields.Char()\n`, 'release.txt': 'over ssh\n',
      }, 'shop_core 2.0', 'staging');
      let t = performance.now();
      const run = await runOf((await push('staging', good)).body.runs[0]);
      assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
      console.log(`# deploy over ssh (pre-deploy backup, git on the host, odoo-bin -u shop_core there, restart, health): ${since(t)}`);
      const log = await p.logText(run.id);
      assert.match(log, new RegExp(`Odoo: the runtime ssh-staging: ${odoo.odooBin.replace(/[.]/g, '\\.')} on root@127\\.0\\.0\\.1 over ssh`));
      assert.match(log, /update shop_core/);
      assert.match(log, /update\.log: .* INFO git_staging odoo\.modules\.loading: loading shop_core\/views\/partner_views\.xml/, 'real odoo-bin updated the addon on the host');
      // Odoo's own addons (web, mail, …: odooAddonsPath, after the checkout) were on its addons path: without
      // them the update still "succeeds", skipping every installed module it cannot find.
      assert.doesNotMatch(log, /Some modules are not loaded|not installable, skipped/);
      assert.equal(execFileSync('git', ['-C', checkout, 'rev-parse', 'HEAD']).toString().trim(), good, 'the host\'s checkout is at the pushed commit');
      assert.deepEqual(await p.sql('git_staging', `select latest_version, state from ir_module_module where name = 'shop_core'`), [{ latest_version: `${version}.2.0`, state: 'installed' }]);
      assert.deepEqual(await p.sql('git_staging', `select column_name from information_schema.columns where table_name = 'res_partner' and column_name = 'shop_channel'`),
        [{ column_name: 'shop_channel' }], '2.0\'s field is a column');
      assert.equal(await release(httpPort), 'over ssh', 'the restarted Odoo on the host serves the new code');
      const servedBy = remotePid();
      assert.ok(servedBy > 0);

      // 2.1 loads a data file naming a field res.partner does not have: odoo-bin -u fails halfway on the host.
      const dbBefore = await fingerprintDb(p.odooPg, 'git_staging');
      const bad = commit({
        'shop_core/__manifest__.py': manifest(`${version}.2.1`, "\n    'data': ['views/partner_views.xml', 'data/broken.xml'],"),
        'shop_core/data/broken.xml': '<odoo>\n  <record id="broken_partner" model="res.partner">\n    <field name="name">Broken</field>\n    <field name="no_such_field">x</field>\n  </record>\n</odoo>\n',
        'release.txt': 'broken over ssh\n',
      }, 'broken over ssh', 'staging');
      t = performance.now();
      const failed = await runOf((await push('staging', bad)).body.runs[0]);
      assert.equal(failed.status, 'failed');
      console.log(`# failed update over ssh and its rollback (git back, restore of the pre-deploy backup, restart): ${since(t)}`);
      assert.match(failed.error!, new RegExp(`the module update failed on root@127\\.0\\.0\\.1: .*; code back at ${good.slice(0, 7)}, database restored from the pre-deploy backup [0-9a-f-]{36}, Odoo running again`));
      assert.match(await p.logText(failed.id), /update\.log: .*Invalid field 'no_such_field'/, 'the failed update\'s log, from the host, is kept');
      assert.equal(execFileSync('git', ['-C', checkout, 'rev-parse', 'HEAD']).toString().trim(), good);
      assert.deepEqual(await fingerprintDb(p.odooPg, 'git_staging'), dbBefore, 'whatever odoo-bin wrote before failing, the restore took back');
      assert.notEqual(remotePid(), servedBy, 'the rollback restarted Odoo on the host');
      assert.equal(await health(httpPort), 200);
      assert.equal(await release(httpPort), 'over ssh', 'the previous code runs');
    } finally {
      const pid = remotePid();
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {}
      }
      sshd.kill();
    }
  });
}
