// backup: pg_dump -Fc of the environment's Odoo database and a tarball of its filestore, streamed into
// the backup store (never whole in memory), plus a manifest with the SHA-256 of each part.
import { z } from 'zod';
import type { BackupManifest } from '../../../contract/index.ts';
import { defineExecutor } from '../executor.ts';
import { connectOdoo, describeConnection } from '../odoo-db.ts';
import { countFiles, inspectOdoo, mib, progress } from '../../odoo/inspect.ts';
import { connectionArgs, findPgTool, pgEnv, spawnTool, targetOf, withTool } from '../../odoo/pg-tools.ts';
import { Readable } from 'node:stream';

export const MANUAL_BACKUPS_PER_DAY = 5;

export const backupExecutor = defineExecutor({
  kind: 'backup',
  description: "Back up the environment's Odoo database and filestore",
  params: z.strictObject({ kind: z.enum(['manual', 'daily', 'pre-deploy']).default('manual') }),
  async execute({ run, environment: env, params, log, signal, resolveSecret, backups }) {
    if (params.kind === 'manual') {
      const today = await backups.manualToday();
      if (today >= MANUAL_BACKUPS_PER_DAY) {
        throw new Error(`${env.name} already has ${today} manual backups today (at most ${MANUAL_BACKUPS_PER_DAY} a day, as on Odoo.sh); the daily backup runs by itself`);
      }
    }
    const password = resolveSecret(env.db_password_ref);
    await log(`connecting to ${describeConnection(env)}`);
    const db = await connectOdoo(env, signal, () => password);
    let facts;
    try {
      facts = await inspectOdoo(db, env.db_name);
    } finally {
      await db.end().catch(() => {});
    }
    const pgDump = await findPgTool('pg_dump', facts.serverVersion);
    await log(`Odoo ${facts.odooVersion}, ${Object.keys(facts.modules).length} modules; PostgreSQL ${facts.serverVersion}, ${pgDump.path} ${pgDump.version}`);
    const files = env.filestore_path ? await countFiles(env.filestore_path) : null;
    if (files === null) await log('no filestore configured for this environment: backing up the database only', 'stderr');

    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, 'Z');
    const prefix = `${env.project_id}/${env.id}/${stamp}-run${run.id}`;
    const store = backups.store;
    try {
      await log(`pg_dump -Fc ${env.db_name} → ${store.locationOf(`${prefix}/dump.pgc`)}`);
      const target = targetOf(env, password);
      const dump = spawnTool(pgDump, ['--format=custom', '--no-owner', ...connectionArgs(target), '--dbname', target.database], { env: pgEnv(target), signal });
      const dumpPart = await withTool(dump, store.put(`${prefix}/dump.pgc`, dump.child.stdout!.pipe(progress((l) => void log(l), 'dump')), signal));
      await log(`dump: ${mib(dumpPart.bytes)}, sha256 ${dumpPart.sha256}`);

      let filestore: BackupManifest['filestore'] = null;
      if (env.filestore_path && files !== null) {
        await log(`tar of the filestore ${env.filestore_path} (${files} files)`);
        const tar = spawnTool('tar', ['--create', '--file=-', '--directory', env.filestore_path, '.'], { signal });
        const part = await withTool(tar, store.put(`${prefix}/filestore.tar`, tar.child.stdout!.pipe(progress((l) => void log(l), 'filestore')), signal));
        filestore = { key: `${prefix}/filestore.tar`, ...part, files };
        await log(`filestore: ${mib(part.bytes)}, sha256 ${part.sha256}`);
      }

      const manifest: BackupManifest = {
        format: 'odooops-backup/1',
        database: env.db_name,
        createdAt: new Date().toISOString(),
        kind: params.kind,
        odoo: { version: facts.odooVersion, majorVersion: facts.majorVersion },
        modules: facts.modules,
        postgres: { server: facts.serverVersion, pgDump: pgDump.version },
        dump: { key: `${prefix}/dump.pgc`, ...dumpPart },
        filestore,
      };
      const text = JSON.stringify(manifest, null, 2);
      const m = await store.put(`${prefix}/manifest.json`, Readable.from([Buffer.from(text)]), signal);
      const size = dumpPart.bytes + (filestore?.bytes ?? 0) + m.bytes;
      const id = await backups.record(params.kind, prefix, size, m.sha256, manifest);
      await log(`backup ${id} (${params.kind}): ${mib(size)}`);
      return { backupId: id, kind: params.kind, bytes: size, location: store.locationOf(prefix), manifestSha256: m.sha256 };
    } catch (err) {
      // Nothing half-written stays in the store.
      await store.remove(prefix).catch(() => {});
      throw err;
    }
  },
});
