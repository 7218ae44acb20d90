// A run's params are checked when it is queued (or its approval requested): their shape by the kind's
// schema (contract/run-params.ts, the one the executor parses with), and what they name (a backup, an
// environment) against the control plane, as the caller sees it. A refused run is a 400 that says
// which parameter and what it takes; nothing is queued. The executor checks again when the run starts.
import type pg from 'pg';
import {
  CLONE_BACKUP_NOT_PRODUCTION, cloneTargetRefusal, destroyRefusal, isBuiltinKind, restoreRefusal, runParamsProblems,
} from '../../contract/run-params.ts';
import { HttpError } from './errors.ts';

interface Target {
  project: { id: string; slug: string };
  env: { id: string; name: string; stage: string };
}

const refuse = (message: string, hint?: string, details?: unknown) => new HttpError(400, 'invalid_params', message, hint, details);

export async function checkRunParams(c: pg.PoolClient, { project, env }: Target, kind: string, params: Record<string, unknown>): Promise<void> {
  // Kinds an operator's --executors module adds are known to its workers only: they check them.
  if (!isBuiltinKind(kind)) return;
  const problems = runParamsProblems(kind, params);
  if (problems) {
    throw refuse(`invalid params for a ${kind} run: ${problems.join('; ')}`,
      `Nothing was queued. Fix the parameter and queue again (odooops run queue ${project.slug} ${env.name} ${kind} --param KEY=VALUE).`, { problems });
  }
  const backupOf = async (id: string) => {
    const { rows } = await c.query(
      `select b.id, e.id as environment_id, e.name as environment, e.stage from ops.backups b join ops.environments e on e.id = b.environment_id
       where b.id = $1 and b.project_id = $2`, [id, project.id]);
    if (!rows[0]) {
      throw refuse(`params.backup: there is no backup ${id} in project ${project.slug}`,
        `Nothing was queued. odooops backup list ${project.slug} ENV lists an environment's backups.`);
    }
    return rows[0] as { id: string; environment_id: string; environment: string; stage: string };
  };
  switch (kind) {
    case 'restore': {
      const refused = restoreRefusal(await backupOf(params.backup as string), env);
      if (refused) throw refuse(refused);
      return;
    }
    case 'verify': {
      const b = await backupOf(params.backup as string);
      if (b.environment_id !== env.id) {
        throw refuse(`params.backup: backup ${b.id} is of ${b.environment}, not ${env.name}; a verify runs on the backup's own environment`,
          `Nothing was queued. odooops backup verify ${b.id} queues it there.`);
      }
      return;
    }
    case 'destroy': {
      const refused = destroyRefusal(env);
      if (refused) throw refuse(refused);
      return;
    }
    case 'clone': {
      const refused = cloneTargetRefusal(env);
      if (refused) throw refuse(refused);
      if (typeof params.backup === 'string') {
        const b = await backupOf(params.backup);
        if (b.stage !== 'production') throw refuse(`${CLONE_BACKUP_NOT_PRODUCTION} (backup ${b.id} is of ${b.environment}, a ${b.stage} environment)`);
        return;
      }
      const from = params.from as string | undefined;
      const { rows } = await c.query(
        `select name, stage from ops.environments where project_id = $1 and ${from === undefined ? `stage = 'production'` : 'name = $2'} order by name`,
        from === undefined ? [project.id] : [project.id, from]);
      if (!rows.length) {
        throw refuse(from === undefined
          ? `${project.slug} has no production environment to clone from`
          : `params.from: there is no environment "${from}" in project ${project.slug}`,
        `Nothing was queued. Name the source with --param from=ENV (odooops env list ${project.slug} lists them).`);
      }
      if (rows.length > 1) throw refuse(`${project.slug} has ${rows.length} production environments (${rows.map((r) => r.name).join(', ')}); name the source with --param from=ENV`);
      if (rows[0].name === env.name) throw refuse(`cannot clone ${env.name} into itself: params.from names another environment of ${project.slug}`);
      return;
    }
  }
}
