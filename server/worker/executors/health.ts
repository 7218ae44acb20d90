// health: a read-only probe of an environment's Odoo database and filestore. It proves the worker can
// reach the database through the registry's server entry and that it is an Odoo database.
import { readdir, stat } from 'node:fs/promises';
import { noParams } from '../../../contract/run-params.ts';
import { defineExecutor } from '../executor.ts';
import { connectOdoo } from '../odoo-db.ts';
import { inspectOdoo, mib } from '../../odoo/inspect.ts';

export const healthExecutor = defineExecutor({
  kind: 'health',
  description: "Probe the environment's Odoo database and filestore",
  params: noParams,
  async execute({ environment: env, log, signal, infra }) {
    const target = infra.database(env);
    const path = infra.filestore(env);
    await log(`connecting to ${infra.describe(env)}`);
    const db = await connectOdoo(target, signal);
    try {
      // The same checks (and messages) as before a backup or a clone.
      const { serverVersion: server, odooVersion } = await inspectOdoo(db, env.db_name);
      await log(`PostgreSQL ${server}`);
      const { rows: modules } = await db.query(`select count(*)::int as n from ir_module_module where state = 'installed'`);
      const installed = modules[0].n as number;
      const pending = (await db.query(
        `select count(*)::int as n from ir_module_module where state in ('to install', 'to upgrade', 'to remove')`,
      )).rows[0].n as number;
      const size = (await db.query('select pg_database_size(current_database())::bigint as b')).rows[0].b as number;
      const hasParams = (await db.query(`select to_regclass('public.ir_config_parameter') is not null as ok`)).rows[0].ok as boolean;
      const neutralized = hasParams
        ? ((await db.query(`select value from ir_config_parameter where key = 'database.is_neutralized'`)).rows[0]?.value ?? 'false') === 'true'
        : false;
      await log(`Odoo ${odooVersion}: ${installed} modules installed${pending ? `, ${pending} waiting for install/upgrade/removal` : ''}`);
      await log(`database size ${mib(size)}${neutralized ? ', neutralized' : ''}`);

      let filestore: { root: string; entries: number } | null = null;
      if (path) {
        try {
          const s = await stat(path);
          if (!s.isDirectory()) throw new Error('not a directory');
          filestore = { root: env.filestore_root!, entries: (await readdir(path)).length };
          await log(`filestore ${env.db_name} in the root ${env.filestore_root}: ${filestore.entries} top-level entries`);
        } catch (err) {
          throw new Error(`the filestore ${env.db_name} in the root ${env.filestore_root} is not readable on this worker: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      if (pending > 0) await log(`warning: ${pending} module(s) are in a pending state; an update was interrupted?`, 'stderr');
      await log('healthy');
      return { postgresVersion: server, odooVersion, modulesInstalled: installed, modulesPending: pending, databaseBytes: size, neutralized, filestore };
    } finally {
      await db.end().catch(() => {});
    }
  },
});
