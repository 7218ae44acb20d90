// backup: pg_dump -Fc of the environment's Odoo database streamed into the backup store (never whole in
// memory), its filestore as content objects (only files new to the project's store are read and
// uploaded) with an index, plus a manifest with the SHA-256 of each part.
import { backupParams } from '../../../contract/run-params.ts';
import { defineExecutor, type ExecutorContext } from '../executor.ts';
import { connectOdoo } from '../odoo-db.ts';
import { inspectOdoo, mib } from '../../odoo/inspect.ts';
import { listFiles } from '../../storage/filestore-objects.ts';
import { backupPrefix, writeBackup } from '../../odoo/backup-writer.ts';
import { connectionArgs, findPgTool, pgEnv, spawnTool } from '../../odoo/pg-tools.ts';

export const MANUAL_BACKUPS_PER_DAY = 5;

export const backupExecutor = defineExecutor({
  kind: 'backup',
  description: "Back up the environment's Odoo database and filestore",
  params: backupParams,
  async execute(ctx) {
    const { environment: env, params, backups } = ctx;
    if (params.kind === 'manual') {
      const today = await backups.manualToday();
      if (today >= MANUAL_BACKUPS_PER_DAY) {
        throw new Error(`${env.name} already has ${today} manual backups today (at most ${MANUAL_BACKUPS_PER_DAY} a day, as on Odoo.sh); the daily backup runs by itself`);
      }
    }
    return takeBackup(ctx, params.kind);
  },
});

/** A backup of the run's environment (what a backup run does; a deploy takes its pre-deploy one so). */
export async function takeBackup(
  { run, environment: env, log, signal, infra, backups }: ExecutorContext<unknown>, kind: 'manual' | 'daily' | 'pre-deploy',
): Promise<{ backupId: string; kind: string; bytes: number; manifestSha256: string }> {
  const params = { kind };
  const target = infra.database(env);
  const filestore = infra.filestore(env);
  await log(`connecting to ${infra.describe(env)}`);
  const db = await connectOdoo(target, signal);
  let facts;
  try {
    facts = await inspectOdoo(db, env.db_name);
  } finally {
    await db.end().catch(() => {});
  }
  const pgDump = await findPgTool('pg_dump', facts.serverVersion);
  await log(`Odoo ${facts.odooVersion}, ${Object.keys(facts.modules).length} modules; PostgreSQL ${facts.serverVersion}, ${pgDump.path} ${pgDump.version}`);
  const files = filestore ? await listFiles(filestore, signal) : null;
  if (files === null) await log('no filestore configured for this environment: backing up the database only', 'stderr');

  const store = backups.store;
  const written = await writeBackup({
    backups, projectId: env.project_id, prefix: backupPrefix(env.project_id, env.id, run.id), kind: params.kind, database: env.db_name, facts, pgDumpVersion: pgDump.version,
    dump: () => {
      void log(`pg_dump -Fc ${env.db_name} → the backup store "${store.name}"`); // its name: a bucket or path is the operator's
      return spawnTool(pgDump, ['--format=custom', '--no-owner', ...connectionArgs(target), '--dbname', target.database], { env: pgEnv(target), signal });
    },
    filestore: filestore && files !== null ? { dirs: [{ dir: filestore, files }] } : null,
    log: (l) => log(l), signal,
  });
  await log(`backup ${written.id} (${params.kind}): ${mib(written.bytes)}`);
  return { backupId: written.id, kind, bytes: written.bytes, manifestSha256: written.manifestSha256 };
}
