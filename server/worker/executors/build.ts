// build: what Odoo.sh does on a push to a development branch. The revision is fetched with its
// submodules (each URL allowed by the registry), the requirements go into the environment's own
// virtual environment (a failed install stops the build before any database is touched), and a
// throwaway database (<environment's database>_odooops_build_<id>, checked against the registry like any other) is
// made by odoo-bin with demo data, the repository's own modules installed (their submodules' modules
// come as dependencies) and their tests run. Odoo's test log becomes the run's result (contract
// BuildResult), kept even when tests fail: the run then fails naming them. GitHub gets the commit status
// "ci/odooops (tests)" and a line on the commit's open pull requests. The build has a checkout of its
// own (the environment's running Odoo serves the deploy's), its database is dropped after, its log kept.
import { join } from 'node:path';
import { BuildResult, type TestSummary } from '../../../contract/index.ts';
import { buildParams } from '../../../contract/run-params.ts';
import { freePort } from '../../db/embedded.ts';
import { branchHead, fetchRepository, hasCommit } from '../../deploy/git.ts';
import { installRequirements } from '../../deploy/python-env.ts';
import { linesOf } from '../../infra/output-lines.ts';
import { addonsDirs, checkoutWithSubmodules, fetchSubmodules, repositoryContents } from '../../deploy/submodules.ts';
import { demoFlags } from '../../deploy/odoo-demo.ts';
import { execAs, runFs, spawnAs, toolEnv } from '../../infra/run-user.ts';
import { dropDatabase, maintenance, withSuffix } from '../../odoo/switch.ts';
import { failureMessage, parseTestLog, summaryLine } from '../../odoo/test-log.ts';
import { defineExecutor, RunFailure } from '../executor.ts';

const short = (sha: string) => sha.slice(0, 7);

/**
 * The build's database, beside the environment's: marked "_odooops_" (which no environment's database may
 * contain, checked by the API and by a constraint), so it can never be another environment's; "<db>_build"
 * was, for the branch "<branch>-build", and the build dropped that environment's database as its
 * leftover. The environment's id tells apart environments whose names were cut to PostgreSQL's 63 bytes.
 */
export const buildDatabaseName = (db: string, envId: string) => withSuffix(db, `_odooops_build_${envId.replace(/-/g, '').slice(0, 8)}`);

export { buildParams };

export const buildExecutor = defineExecutor({
  kind: 'build',
  description: 'Build a revision: fetch with submodules, install requirements, a fresh database with the repository\'s modules and their tests',
  params: buildParams,
  async execute(ctx) {
    const { environment: env, params, log, signal, infra, workDir, github } = ctx;
    const project = await ctx.project();
    if (!project.repo_url) throw new Error(`project ${project.slug} has no repository to build; set it: odooops project git ${project.slug} --repo-url <url>`);
    if (!env.runtime) {
      throw new Error(`${env.name} has no runtime to build with; an admin sets one: odooops env deploy-target ${project.slug} ${env.name} --runtime NAME`);
    }
    const target = infra.runtime(env);
    if (target.kind !== 'local') {
      throw new Error(`builds run with local runtimes; ${env.runtime} reaches Odoo over ssh (give ${env.name} a local runtime to build on this worker)`);
    }
    const repo = infra.repository(project.repo_url);
    const database = buildDatabaseName(env.db_name, env.id);
    // The registry decides about the environment's database; the build's sits beside it as the side
    // databases of restores and clones do (names with "_odooops_" are OdooOps's own, never an environment's).
    const db = { ...infra.database(env), database };
    const checkout = join(workDir, 'builds', env.id);
    await log(`fetching ${project.repo_url}${params.branch ? ` (${params.branch})` : ''}`);
    await fetchRepository(project.repo_url, repo, checkout, signal);
    const sha = params.revision ?? await branchHead(checkout, params.branch!).catch(() => {
      throw new Error(`the branch ${params.branch} is not in ${project.repo_url}; push it first`);
    });
    if (!params.revision) await log(`${params.branch} is at ${short(sha)}`);

    const tell = async (what: string, fn: (g: NonNullable<typeof github>, repo: string) => Promise<void>) => {
      if (!github || !project.github_repo) return;
      await fn(github, project.github_repo).catch((err) => log(`github: could not ${what}: ${(err as Error).message}`, 'stderr'));
    };
    const status = (state: 'pending' | 'success' | 'failure', description: string) =>
      tell('set the commit status', (g, r) => g.testStatus(r, sha, state, description, env.url));
    await status('pending', `building on ${env.name}`);

    let summary: TestSummary | null = null;
    try {
      if (!(await hasCommit(checkout, sha))) throw new Error(`revision ${sha} is not in ${project.repo_url}`);
      const n = await fetchSubmodules(checkout, sha, project.repo_url, { allow: (u) => infra.repository(u), slug: project.slug, log: (l) => log(l), signal });
      await checkoutWithSubmodules(checkout, sha, project.repo_url, signal);
      const contents = await repositoryContents(checkout, sha, project.repo_url);
      const own = [...new Set(contents.modules.filter((m) => m.own).map((m) => m.name))].sort();
      await log(`${short(sha)}: ${own.length ? `modules ${own.join(', ')}` : 'no modules'}${n ? `; ${n} submodule${n === 1 ? '' : 's'}` : ''}` +
        `${contents.requirements.length ? `; requirements ${contents.requirements.map((r) => r.path).join(', ')}` : ''}`);
      if (!own.length) throw new Error(`${short(sha)} has no Odoo module (no __manifest__.py) of its own to build`);
      // A module name becomes a --test-tags item and an -i list entry: only what Odoo itself accepts.
      const odd = own.find((m) => !/^[A-Za-z0-9_]{1,100}$/.test(m));
      if (odd) throw new Error(`the module directory "${odd}" is not a name Odoo accepts (letters, digits and "_"); rename it`);

      const python = await installRequirements({
        workDir, envId: env.id, runtime: target, runtimeName: env.runtime, checkout, files: contents.requirements.map((r) => r.path), log: (l) => log(l), signal,
      });
      const command = (args: string[]): [string, string[]] => (python ? [python, [target.odooBin, ...args]] : [target.odooBin, args]);
      const childEnv = toolEnv({ PGPASSWORD: db.password });
      const version = (await execAs(...command(['--version']), { signal, env: childEnv })).stdout.trim().replace(/^Odoo Server\s+/, '') || null;
      // 19.0 loads demo data only when asked (--with-demo); 17.0 loads it unless told not to.
      const demo = await demoFlags(target.odooBin, python);
      await log(`Odoo ${version ?? '(unknown version)'} with ${python ? 'the environment\'s virtual environment' : 'the runtime\'s Python'}`);

      const dataDir = join(workDir, 'builds', `${env.id}.data`);
      const admin = await maintenance(db);
      try {
        if (await dropDatabase(admin, database)) await log(`dropped the leftover build database ${database}`);
        await runFs.rm(dataDir);
        await runFs.mkdir(dataDir);
        const port = await freePort();
        const args = [...target.odooArgs, '-d', database, '--db-filter', `^${database}$`,
          '--addons-path', [...addonsDirs(checkout, contents.modules), ...target.addonsPath].join(','), '--data-dir', dataDir,
          ...(db.host ? ['--db_host', db.host] : []), ...(db.port ? ['--db_port', String(db.port)] : []), ...(db.user ? ['--db_user', db.user] : []),
          '-i', own.join(','), ...demo, '--test-enable', '--test-tags', own.map((m) => `/${m}`).join(','),
          // Tests start Odoo's HTTP server (for HttpCase): a free port on the loopback, no workers, no crons.
          '--http-interface', '127.0.0.1', '--http-port', String(port), '--workers', '0', '--max-cron-threads', '0',
          '--log-level', 'info', '--stop-after-init'];
        await log(`fresh database ${database}: odoo-bin -i ${own.join(',')} --test-enable --test-tags ${own.map((m) => `/${m}`).join(',')}`);
        const started = performance.now();
        const lines: string[] = [];
        const child = spawnAs(...command(args), { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], signal });
        const code = await linesOf(child, async (l) => {
          lines.push(l);
          await log(`build.log: ${l}`);
        }, `the runtime ${env.runtime}'s odoo-bin`);
        const seconds = Math.round((performance.now() - started) / 100) / 10;
        const parsed = parseTestLog(lines, checkout, own);
        const { finished, lastError, ...tests } = parsed;
        summary = tests;
        const result: BuildResult = BuildResult.parse({ revision: sha, odooVersion: version, tests, seconds });
        await log(`tests: ${summaryLine(tests)} (${seconds} s for the fresh database and the tests)`);
        if (!finished) throw new RunFailure(`odoo-bin exited with ${code} before its tests ended: ${lastError ?? 'see the build.log lines'}`, result);
        if (tests.failed + tests.errors > 0) throw new RunFailure(failureMessage(tests), result);
        if (code !== 0) throw new RunFailure(`odoo-bin exited with ${code} though every test passed: ${lastError ?? 'see the build.log lines'}`, result);
        await status('success', summaryLine(tests));
        await comment(ctx, sha, tests, null);
        return result;
      } finally {
        await dropDatabase(admin, database).catch((err) => log(`could not drop ${database}: ${(err as Error).message}`, 'stderr'));
        await admin.end().catch(() => {});
        await runFs.rm(dataDir).catch(() => {});
      }
    } catch (err) {
      const message = (err as Error).message;
      await status('failure', summary ? summaryLine(summary) : message);
      await comment(ctx, sha, summary, summary ? null : message);
      throw err;
    }
  },
});

/** A line on the commit's open pull requests: the summary, or why there is none. */
async function comment(ctx: Parameters<typeof buildExecutor.execute>[0], sha: string, tests: TestSummary | null, error: string | null): Promise<void> {
  const { github, environment: env, log } = ctx;
  const project = await ctx.project();
  if (!github || !project.github_repo) return;
  const failures = tests?.failures.slice(0, 10).map((f) => `\n- \`${f.test.split(' ')[0]}\` (${f.module ?? '?'})${f.file ? ` ${f.file}${f.line ? `:${f.line}` : ''}` : ''}: ${f.message.slice(0, 200)}`).join('') ?? '';
  const body = `**OdooOps** tests of \`${short(sha)}\` on \`${env.name}\`: ${tests ? summaryLine(tests) : `build failed: ${(error ?? '').slice(0, 500)}`}${failures}`;
  try {
    for (const pr of await github.openPullRequests(project.github_repo, sha)) await github.comment(project.github_repo, pr, body);
  } catch (err) {
    await log(`github: could not comment the summary: ${(err as Error).message}`, 'stderr');
  }
}
