// destroy: what a deleted branch leaves behind in its development environment: Odoo stopped, the
// database dropped, the filestore and the checkout removed; the environment is then archived (renamed
// out of the way, its runs and logs kept). Only development environments are destroyed.
import { join } from 'node:path';
import { destroyRefusal, noParams } from '../../../contract/run-params.ts';
import { defineExecutor } from '../executor.ts';
import { LocalOdoo } from '../../deploy/local-odoo.ts';
import { runFs } from '../../infra/run-user.ts';
import { dropDatabase, maintenance } from '../../odoo/switch.ts';

export const destroyExecutor = defineExecutor({
  kind: 'destroy',
  description: 'Remove a development environment whose branch was deleted (Odoo, database, filestore)',
  params: noParams,
  async execute({ environment: env, log, infra, workDir, archive }) {
    const refused = destroyRefusal(env);
    if (refused) throw new Error(refused);
    const db = infra.database(env);
    // Resolved (and checked to be a real directory inside its root) before anything is removed.
    const filestore = infra.filestore(env);
    const runtime = env.runtime ? infra.runtime(env) : null;
    if (runtime?.kind === 'local' && (await new LocalOdoo(workDir, env, runtime, db, filestore).stop())) await log('stopped Odoo');
    const admin = await maintenance(db);
    try {
      await dropDatabase(admin, env.db_name);
      await log(`dropped the database ${env.db_name}`);
    } finally {
      await admin.end().catch(() => {});
    }
    if (filestore) {
      await runFs.rm(filestore);
      await log(`removed its filestore from the root ${env.filestore_root}`);
    }
    await runFs.rm(join(workDir, 'checkouts', env.id));
    const name = await archive();
    await log(`${env.name} is archived as ${name}`);
    return { archivedAs: name };
  },
});
