// destroy: what a deleted branch leaves behind in its development environment: Odoo stopped, the
// database dropped, the filestore and the checkout removed; the environment is then archived (renamed
// out of the way, its runs and logs kept). Only development environments are destroyed.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { DeployTarget } from '../../../contract/index.ts';
import { defineExecutor } from '../executor.ts';
import { LocalOdoo } from '../../deploy/local-odoo.ts';
import { targetOf } from '../../odoo/pg-tools.ts';
import { dropDatabase, maintenance } from '../../odoo/switch.ts';

export const destroyExecutor = defineExecutor({
  kind: 'destroy',
  description: 'Remove a development environment whose branch was deleted (Odoo, database, filestore)',
  params: z.strictObject({}),
  async execute({ environment: env, log, resolveSecret, workDir, archive }) {
    if (env.stage !== 'development') throw new Error(`${env.name} is a ${env.stage} environment: only development environments are destroyed with their branch`);
    const password = resolveSecret(env.db_password_ref);
    const target = DeployTarget.safeParse(env.deploy_target);
    if (target.success && target.data.kind === 'local' && (await new LocalOdoo(workDir, env, target.data, password).stop())) await log('stopped Odoo');
    const admin = await maintenance(targetOf(env, password));
    try {
      await dropDatabase(admin, env.db_name);
      await log(`dropped the database ${env.db_name}`);
    } finally {
      await admin.end().catch(() => {});
    }
    if (env.filestore_path) await rm(env.filestore_path, { recursive: true, force: true });
    await rm(join(workDir, 'checkouts', env.id), { recursive: true, force: true });
    const name = await archive();
    await log(`${env.name} is archived as ${name}`);
    return { archivedAs: name };
  },
});
