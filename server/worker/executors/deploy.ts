// deploy: a pushed revision of the project's addons repository onto this environment, as Odoo.sh does
// on a push: fetch and check out the commit, update the modules whose manifest version changed (and
// install new ones), taking a pre-deploy backup first when versions or requirements changed, restart
// Odoo and check its health. On any failure the previous revision is checked out again and the
// pre-deploy backup restored, Odoo restarted on them, and the run fails with this log kept.
import { join } from 'node:path';
import { deployParams } from '../../../contract/run-params.ts';
import { defineExecutor } from '../executor.ts';
import { branchHead, fetchRepository, hasCommit, moduleChanges } from '../../deploy/git.ts';
import type { OdooHost } from '../../deploy/host.ts';
import { LocalOdoo } from '../../deploy/local-odoo.ts';
import { SshOdoo } from '../../deploy/ssh-odoo.ts';
import { installRequirements } from '../../deploy/python-env.ts';
import { fetchSubmodules, repositoryContents, submodulesAt } from '../../deploy/submodules.ts';
import { databaseExists, maintenance } from '../../odoo/switch.ts';
import { takeBackup } from './backup.ts';
import { restoreBackup } from './restore.ts';

const short = (sha: string) => sha.slice(0, 7);

export { deployParams };

export const deployExecutor = defineExecutor({
  kind: 'deploy',
  description: 'Deploy a revision of the addons repository: update changed modules, restart, health check; roll back on failure',
  params: deployParams,
  async execute(ctx) {
    const { run, environment: env, params, log, signal, infra, workDir, github, backups, runIsActive } = ctx;
    const project = await ctx.project();
    if (!project.repo_url) throw new Error(`project ${project.slug} has no repository to deploy from; set it: odooops project git ${project.slug} --repo-url <url>`);
    if (!env.runtime) {
      throw new Error(`${env.name} has no runtime to deploy with; an admin sets one: odooops env deploy-target ${project.slug} ${env.name} --runtime NAME (odooops infra list ${project.slug} shows the runtimes)`);
    }
    // Everything a deploy executes or reaches comes from the registry, for this project only.
    const target = infra.runtime(env);
    const repo = infra.repository(project.repo_url);
    const db = infra.database(env);
    const checkout = join(workDir, 'checkouts', env.id);
    await log(`fetching ${project.repo_url}${params.branch ? ` (${params.branch})` : ''}`);
    await fetchRepository(project.repo_url, repo, checkout, signal);
    const sha = params.revision ?? await branchHead(checkout, params.branch!).catch(() => {
      throw new Error(`the branch ${params.branch} is not in ${project.repo_url}; push it first`);
    });

    // GitHub hears about it, but a GitHub that cannot be reached does not fail the deploy.
    const tell = async (what: string, fn: (g: NonNullable<typeof github>, repo: string) => Promise<void>) => {
      if (!github || !project.github_repo) return;
      await fn(github, project.github_repo).catch((err) => log(`github: could not ${what}: ${(err as Error).message}`, 'stderr'));
    };
    const feedback = async (state: 'pending' | 'success' | 'failure', description: string) => {
      await tell('set the commit status', (g, repo) => g.status(repo, sha, env.stage, state, description, env.url));
      await tell('record the deployment', (g, repo) => g.deployment(repo, sha, env.name, env.stage, state === 'pending' ? 'in_progress' : state, env.url));
    };
    await feedback('pending', `deploying to ${env.name}`);

    try {
      if (!params.revision) await log(`${params.branch} is at ${short(sha)}`);
      if (!(await hasCommit(checkout, sha))) throw new Error(`revision ${sha} is not in ${project.repo_url}`);
      let previous = env.deployed_revision ?? null;
      if (previous && !(await hasCommit(checkout, previous))) {
        await log(`the previous revision ${short(previous)} is gone from the repository: treating this as a first deploy`, 'stderr');
        previous = null;
      }
      // Submodules (checked against the registry, then fetched) before anything is decided: their modules count.
      if (target.kind === 'local') {
        const n = await fetchSubmodules(checkout, sha, project.repo_url, { allow: (u) => infra.repository(u), slug: project.slug, log: (l) => log(l), signal });
        if (n) await log(`${n} submodule${n === 1 ? '' : 's'} fetched`);
      } else if ((await submodulesAt(join(checkout, '.git'), sha, project.repo_url)).length) {
        throw new Error(`${short(sha)} has git submodules, which deploys over ssh do not fetch yet; deploy it with a local runtime, or vendor the submodules' addons`);
      }
      const changes = await moduleChanges(checkout, previous, sha, target.kind === 'local' ? project.repo_url : undefined);
      await log(`${previous ? `${short(previous)} → ${short(sha)}` : `first deploy of ${short(sha)}`}: ` +
        `${changes.update.length ? `update ${changes.update.join(', ')}` : 'no module version changed'}` +
        `${changes.install.length ? `; install ${changes.install.join(', ')}` : ''}${changes.requirementsChanged ? '; requirements changed' : ''}`);

      const filestore = infra.filestore(env);
      const odoo: OdooHost = target.kind === 'local' ? new LocalOdoo(workDir, env, target, db, filestore, project.repo_url) : new SshOdoo(workDir, env, target, project.repo_url, repo);
      await log(`Odoo: ${odoo.description}`);
      const admin = await maintenance(db);
      const hasDb = await databaseExists(admin, env.db_name).finally(() => admin.end().catch(() => {}));
      let backupId: string | null = null;
      if (hasDb && (changes.update.length || changes.install.length || changes.requirementsChanged)) {
        await log('module versions or requirements changed: taking the pre-deploy backup first');
        backupId = (await takeBackup(ctx, 'pre-deploy')).backupId;
      }

      try {
        if (await odoo.beforeUpdate()) await log('stopped Odoo');
        await odoo.checkout(sha, signal);
        if (target.kind === 'local') {
          // The environment's virtual environment gets the requirements before Odoo runs the new code.
          const files = (await repositoryContents(checkout, sha, project.repo_url)).requirements.map((r) => r.path);
          await installRequirements({ workDir, envId: env.id, runtime: target, runtimeName: env.runtime, checkout, files, log: (l) => log(l), signal });
        }
        if (changes.update.length || changes.install.length) {
          await odoo.update(changes, (l) => log(`update.log: ${l}`), signal);
        }
        await odoo.restart();
        await odoo.healthy(target.healthTimeoutSeconds * 1000, signal);
        await log(`Odoo answers with ${short(sha)}`);
      } catch (err) {
        const reason = (err as Error).message;
        await log(`deploy of ${short(sha)} failed: ${reason}; rolling back`, 'stderr');
        const undone: string[] = [];
        await odoo.beforeUpdate().catch(() => false);
        if (previous) {
          await odoo.checkout(previous);
          undone.push(`code back at ${short(previous)}`);
        }
        if (backupId) {
          const backup = await backups.get(backupId);
          await restoreBackup({
            runId: run.id, env, target: db, filestore, where: infra.describe(env), backup, backups, log, signal: new AbortController().signal, isActive: runIsActive,
          });
          undone.push(`database restored from the pre-deploy backup ${backupId}`);
        }
        if (previous) {
          await odoo.restart();
          await odoo.healthy(target.healthTimeoutSeconds * 1000).then(() => undone.push('Odoo running again'), (e) => undone.push(`Odoo not healthy after the rollback either: ${(e as Error).message}`));
        }
        throw new Error(`deploy of ${short(sha)} to ${env.name} failed: ${reason}; ${undone.length ? undone.join(', ') : 'nothing to roll back to (first deploy)'}`);
      }
      await ctx.setDeployedRevision(sha);
      await feedback('success', `deployed to ${env.name}`);
      return { revision: sha, previous, updated: changes.update, installed: changes.install, preDeployBackup: backupId };
    } catch (err) {
      await feedback('failure', (err as Error).message);
      throw err;
    }
  },
});
