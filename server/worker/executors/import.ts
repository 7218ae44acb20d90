// import: an uploaded Odoo export (zip, pg_dump -Fc, or a bundle with a filestore tarball; see
// odoo/import-archive.ts) into the environment. The upload is checked against the SHA-256 the run (and
// an approval into production) was queued for; its SQL runs through the statement checker
// (odoo/sql-script.ts) into a side database as the environment's role, which must not be a superuser;
// that database is checked to be Odoo of the environment's major version, kept as a backup of kind
// 'import' (pg_dump of what was loaded, and the filestore as a clean tarball), then switched in like a
// restore (odoo/switch.ts). Until the switch the environment is untouched.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { BackupManifest, ImportParams } from '../../../contract/index.ts';
import { defineExecutor, type EnvironmentRow, type RunInfra } from '../executor.ts';
import { hashing } from '../../storage/backup-store.ts';
import { backupPrefix, storedBytes } from '../../odoo/backup-writer.ts';
import { writeFilestoreObjects } from '../../storage/filestore-objects.ts';
import { filestoreTarball, openImport, readSql, uploadPrefix, type UploadMeta } from '../../odoo/import-archive.ts';
import { inspectOdoo, mib } from '../../odoo/inspect.ts';
import { connectionArgs, findPgTool, pgEnv, spawnTool, withTool } from '../../odoo/pg-tools.ts';
import { odooFromScript } from '../../odoo/sql-script.ts';
import { createDatabaseError, databaseExists, dropDatabase, maintenance, removeLeftovers, sideName } from '../../odoo/switch.ts';
import { execAs } from '../../infra/run-user.ts';
import { connectOdoo } from '../odoo-db.ts';
import { restoreBackup } from './restore.ts';

/** The Odoo major the environment runs, when known: its runtime's odoo-bin, else its current database. */
export async function environmentMajor(env: EnvironmentRow, infra: RunInfra, signal: AbortSignal): Promise<{ major: string; from: string } | null> {
  if (env.runtime) {
    try {
      const rt = infra.runtime(env);
      if (rt.kind === 'local') {
        const { stdout } = await execAs(rt.odooBin, ['--version'], { signal });
        const m = /(\d+\.\d+)/.exec(stdout);
        if (m) return { major: m[1]!, from: `its runtime ${env.runtime} (${stdout.trim()})` };
      }
    } catch {
      // An unusable runtime says nothing about the version; the database may.
    }
  }
  const target = infra.database(env);
  const admin = await maintenance(target);
  try {
    if (!(await databaseExists(admin, env.db_name))) return null;
  } finally {
    await admin.end().catch(() => {});
  }
  const db = await connectOdoo(target, signal);
  try {
    const facts = await inspectOdoo(db, env.db_name);
    return { major: facts.majorVersion, from: `its current database (Odoo ${facts.odooVersion})` };
  } catch {
    return null;
  } finally {
    await db.end().catch(() => {});
  }
}

export const importExecutor = defineExecutor({
  kind: 'import',
  description: 'Import an uploaded Odoo export (Odoo zip or pg_dump -Fc with its filestore): checked, kept as a backup, restored beside and switched in',
  params: ImportParams,
  async execute({ run, environment: env, params, log, signal, infra, backups, runIsActive }) {
    const store = backups.store;
    // The upload waits in the server's own directory; the backup it becomes goes to the project's store.
    const uploads = backups.uploads;
    const prefix = uploadPrefix(env.project_id, env.id, params.upload);
    const path = uploads.localPath(`${prefix}/upload`);
    const metaPath = uploads.localPath(`${prefix}/upload.json`);
    if (!path || !metaPath) throw new Error(`upload ${params.upload} is not in this worker's backup store (removed, or uploaded to another server's store); upload the file again`);
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as UploadMeta;
    const started = Date.now();
    const h = hashing();
    await pipeline(createReadStream(path), h, new Writable({ write: (_c, _e, cb) => cb() }), { signal });
    const got = h.result();
    if (got.sha256 !== params.sha256 || meta.sha256 !== params.sha256) {
      throw new Error(`upload ${params.upload} has SHA-256 ${got.sha256}, this import was queued (and approved) for ${params.sha256}: it changed since; nothing was imported`);
    }
    await log(`upload ${params.upload}: ${meta.format}, ${mib(got.bytes)}, sha256 ${got.sha256} (checked); Odoo ${meta.odooVersion}`);

    const known = await environmentMajor(env, infra, signal);
    if (known && known.major !== meta.majorVersion) {
      throw new Error(`the upload is Odoo ${meta.majorVersion} but ${env.name} runs Odoo ${known.major} (${known.from}); import a database of the same major version (upgrade it first with Odoo's upgrade service), nothing was changed`);
    }
    await log(known ? `${env.name} runs Odoo ${known.major} (${known.from}): the versions match` : `${env.name}'s Odoo version is not known yet (no runtime, no database): it becomes ${meta.majorVersion}`);

    const target = infra.database(env);
    const filestore = infra.filestore(env);
    const limits = { maxExpandedBytes: meta.maxExpandedBytes };
    const admin = await maintenance(target);
    const srcDb = sideName(env.db_name, 'src', run.id);
    let adopted = false;
    let src: Awaited<ReturnType<typeof openImport>> | undefined;
    let backupPrefixKey: string | undefined;
    let release: (() => Promise<void>) | undefined;
    try {
      // The uploaded SQL runs as this role: a superuser (or a role that may run programs or read server
      // files) could turn an upload into code on the database server.
      const role = (await admin.query(`select r.rolsuper as su, pg_has_role(current_user, 'pg_execute_server_program', 'member') as prog,
        pg_has_role(current_user, 'pg_read_server_files', 'member') as rf, pg_has_role(current_user, 'pg_write_server_files', 'member') as wf
        from pg_roles r where r.rolname = current_user`)).rows[0];
      if (role.su || role.prog || role.rf || role.wf) {
        throw new Error(`imports refuse to run an uploaded dump as ${target.user ?? 'this role'}: it is a superuser or may run programs / read server files on the database server; the operator points the database server entry at Odoo's own non-superuser role (with CREATEDB), nothing was changed`);
      }
      const server = (await admin.query('show server_version')).rows[0].server_version as string;
      const removed = await removeLeftovers(admin, env.db_name, null, ['src'], { runId: run.id, isActive: runIsActive });
      // (This run's own side database, left by an earlier attempt killed mid-load, is among them.)
      if (removed.length) await log(`removed what an interrupted earlier run left: ${removed.join(', ')}`);
      await admin.query(`create database ${pg.escapeIdentifier(srcDb)} template template0 encoding 'UTF8'`).catch(async (err) => {
        throw await createDatabaseError(admin, srcDb, err, target.user ?? 'the default user');
      });
      await log(`loading the upload's SQL into ${srcDb} (${infra.describe(env)}), statement by statement, as ${target.user ?? 'the environment role'}`);
      src = await openImport(path, limits);
      const db = await connectOdoo({ ...target, database: srcDb }, signal);
      let facts;
      const loadStarted = Date.now();
      try {
        const script = await readSql(src, limits, { client: db, signal });
        const odoo = odooFromScript(script);
        // The script emptied search_path (pg_dump's set_config): back to the database's own settings.
        await db.query('reset all');
        facts = await inspectOdoo(db, srcDb);
        if (facts.majorVersion !== odoo.majorVersion) throw new Error(`the loaded database says Odoo ${facts.majorVersion}, its dump said ${odoo.majorVersion}`);
        await db.query('analyze');
        const rows = [...script.rows.values()].reduce((a, b) => a + b, 0);
        await log(`loaded ${script.statements} statements, ${rows} rows into ${script.rows.size} tables in ${((Date.now() - loadStarted) / 1000).toFixed(1)} s${script.skipped ? `; ${script.skipped} GRANT/REVOKE statements skipped (privileges are the operator's)` : ''}`);
      } finally {
        await db.end().catch(() => {});
      }
      if (known && known.major !== facts.majorVersion) throw new Error(`the upload is Odoo ${facts.majorVersion} but ${env.name} runs Odoo ${known.major}; nothing was changed`);
      await log(`Odoo ${facts.odooVersion}, ${Object.keys(facts.modules).length} modules installed`);

      // Kept as a backup of kind 'import': what was loaded (not the upload), and a clean filestore tarball.
      backupPrefixKey = backupPrefix(env.project_id, env.id, run.id, '-import');
      const pgDump = await findPgTool('pg_dump', server);
      const into = { ...target, database: srcDb };
      const dump = spawnTool(pgDump, ['--format=custom', '--no-owner', ...connectionArgs(into), '--dbname', srcDb], { env: pgEnv(into), signal });
      const dumpPart = await withTool(dump, store.put(`${backupPrefixKey}/dump.pgc`, dump.child.stdout!, signal));
      await log(`dump kept: ${mib(dumpPart.bytes)}, sha256 ${dumpPart.sha256}`);
      let filestorePart: BackupManifest['filestore'] = null;
      if (filestore) {
        // As content objects, like every backup's: the lock keeps a sweep off until the row is recorded.
        release = await backups.holdContent();
        const part = await writeFilestoreObjects({
          store, projectId: env.project_id, prefix: backupPrefixKey,
          incoming: (async function* () {
            for await (const f of src!.files({ left: limits.maxExpandedBytes, limit: limits.maxExpandedBytes })) yield { p: f.path, n: f.size, stream: f.stream };
          })(),
          log: (l) => void log(l), signal,
        });
        filestorePart = part;
        await log(`filestore kept: ${part.files} files (${mib(part.bytes)}), ${part.uploaded.files} new to the store (${mib(part.uploaded.bytes)})`);
      } else {
        const tar = filestoreTarball(src, limits);
        tar.stream.resume();
        const n = await tar.files;
        if (n) throw new Error(`the upload has ${n} filestore files but ${env.name} has no filestore root; an admin sets one (odooops env set PROJECT ${env.name} --filestore ROOT) and imports again`);
      }
      const manifest: BackupManifest = {
        format: 'odooops-backup/1', database: env.db_name, createdAt: new Date().toISOString(), kind: 'import',
        odoo: { version: facts.odooVersion, majorVersion: facts.majorVersion }, modules: facts.modules,
        postgres: { server: facts.serverVersion, pgDump: pgDump.version },
        dump: { key: `${backupPrefixKey}/dump.pgc`, ...dumpPart }, filestore: filestorePart,
        import: { upload: params.upload, sha256: params.sha256, format: meta.format, sourceDatabase: src.sourceDatabase },
      };
      const m = await store.put(`${backupPrefixKey}/manifest.json`, Readable.from([Buffer.from(JSON.stringify(manifest, null, 2))]), signal);
      const backupId = await backups.record('import', backupPrefixKey, dumpPart.bytes + storedBytes(filestorePart) + m.bytes, m.sha256, manifest);
      await release?.();
      release = undefined;
      await log(`kept as backup ${backupId} (import)`);
      await src.close();
      src = undefined;

      const backup = await backups.get(backupId);
      adopted = true;
      const done = await restoreBackup({
        runId: run.id, env, target, filestore, where: infra.describe(env), backup, backups, log, signal, adopt: srcDb, isActive: runIsActive,
      });
      await uploads.remove(prefix).catch(() => {});
      const seconds = (Date.now() - started) / 1000;
      await log(`imported into ${env.name} in ${seconds.toFixed(1)} s: Odoo ${facts.odooVersion}, backup ${backupId}`);
      return { backupId, odooVersion: facts.odooVersion, seconds, ...done };
    } catch (err) {
      await src?.close().catch(() => {});
      if (!adopted) {
        const c = signal.aborted ? await maintenance(target).catch(() => undefined) : admin;
        if (c) await dropDatabase(c, srcDb).catch(() => {});
        if (c && c !== admin) await c.end().catch(() => {});
        if (backupPrefixKey) {
          // Only parts not yet recorded as a backup: a recorded one stays (it is a good backup).
          const recorded = (await backups.list().catch(() => [])).some((b) => b.manifest.dump.key.startsWith(`${backupPrefixKey}/`));
          if (!recorded) await store.remove(backupPrefixKey).catch(() => {});
        }
      }
      await log(`import failed; ${env.name} was not changed`, 'stderr');
      throw err;
    } finally {
      await release?.();
      await admin.end().catch(() => {});
    }
  },
});
