// restore: puts a backup in place of the environment's database and filestore. Checksums are verified
// before anything is touched (the dump's on the one read that restores it: dump-restore.ts); the backup
// is restored beside the environment and switched in only when both database and filestore succeeded
// (see odoo/switch.ts); any failure leaves the environment as it was and removes the half-restored
// copy. Into production only with an approval (ops.runs trigger).
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import type { BackupManifest } from '../../../contract/index.ts';
import { restoreParams, restoreRefusal } from '../../../contract/run-params.ts';
import { defineExecutor, type BackupCatalog, type BackupRow, type EnvironmentRow } from '../executor.ts';
import { BackupObjectMissing, hashing, type BackupStore } from '../../storage/backup-store.ts';
import { backupPrefixOf } from '../../odoo/backup-writer.ts';
import { mib, progress } from '../../odoo/inspect.ts';
import { connectionArgs, findPgTool, pgEnv, spawnTool, type PgTarget } from '../../odoo/pg-tools.ts';
import { runFs } from '../../infra/run-user.ts';
import { openDump, type OpenedDump } from '../../odoo/dump-restore.ts';
import { feedTool, filestoreStream, isObjects, missingObjects } from '../../storage/filestore-objects.ts';
import { createDatabaseError, dropDatabase, maintenance, removeLeftovers, sideDir, sideName, switchOver } from '../../odoo/switch.ts';
import { catchMailBeforeSwitch } from '../../odoo/catch-mail.ts';

export interface VerifyOptions {
  /**
   * Whether to read the dump back (default true). A caller that restores the dump right after (restore,
   * clone from a backup) says false: dump-restore.ts checks the dump's SHA-256 on its own read, before
   * pg_restore runs it, so it is read from the store once; here its presence is checked (a HEAD).
   */
  dump?: boolean;
}

/**
 * Reads every part of a backup back and compares size and SHA-256 with what was recorded (of an objects
 * filestore, the index, and that the store holds every file it lists, in a pack or an object of its own:
 * one listing and the pack indexes; each file's SHA-1 is checked as a restore takes it out, and by
 * `odooops backup verify`); returns the store that
 * verified. When the backup's first store fails and another holds it too, says so and verifies that one
 * (a damaged primary with a good copy still restores).
 */
export async function verifyBackup(b: BackupRow, backups: BackupCatalog, log: (l: string) => Promise<void>, signal: AbortSignal, o: VerifyOptions = {}): Promise<BackupStore> {
  const stores = await backups.storesOf(b);
  if (!stores.length) await backups.storeOf(b); // throws, naming the stores and why none holds it
  const readDump = o.dump ?? true;
  let firstErr: unknown;
  for (const [i, store] of stores.entries()) {
    try {
      await verifyIn(store, b, readDump, signal);
      const fs = b.manifest.filestore;
      const parts = [readDump ? `dump ${mib(b.manifest.dump.bytes)}` : 'manifest', ...(fs ? [`filestore ${mib(fs.bytes)} (${fs.files} files${isObjects(fs) ? ', every object present' : ''})`] : [])];
      await log(`verified${stores.length > 1 || b.stores?.length > 1 ? ` in the store "${store.name}"` : ''}: ${parts.join(', ')}, checksums match${readDump ? '' : `; the dump (${mib(b.manifest.dump.bytes)}) is checked as the restore reads it, before pg_restore runs it`}`);
      return store;
    } catch (err) {
      if (signal.aborted) throw err;
      firstErr ??= err;
      const next = stores[i + 1];
      if (next) await log(`backup ${b.id} in the store "${store.name}" fails verification (${(err as Error).message}); the store "${next.name}" holds it too: verifying that one`);
    }
  }
  throw firstErr;
}

async function verifyIn(store: BackupStore, b: BackupRow, readDump: boolean, signal: AbortSignal): Promise<void> {
  const check = async (key: string, bytes: number | null, sha256: string, label: string) => {
    const h = hashing();
    await pipeline(await store.get(key), h, new Writable({ write: (_c, _e, cb) => cb() }), { signal });
    const got = h.result();
    if (got.sha256 !== sha256 || (bytes !== null && got.bytes !== bytes)) {
      throw new Error(`backup ${b.id} is corrupt: ${label} has sha256 ${got.sha256} (${got.bytes} bytes), the backup recorded ${sha256}${bytes === null ? '' : ` (${bytes} bytes)`}; nothing was changed`);
    }
  };
  const prefix = backupPrefixOf(b.manifest);
  await check(`${prefix}/manifest.json`, null, b.sha256, 'manifest.json');
  if (readDump) await check(b.manifest.dump.key, b.manifest.dump.bytes, b.manifest.dump.sha256, 'the database dump');
  else if (!(await store.exists(b.manifest.dump.key))) throw new BackupObjectMissing(b.manifest.dump.key, store.locationOf(b.manifest.dump.key));
  const fs = b.manifest.filestore;
  if (isObjects(fs)) {
    const missing = await missingObjects(store, b.project_id, fs, signal).catch((err) => {
      throw new Error(`backup ${b.id} is corrupt: ${(err as Error).message}; nothing was changed`, { cause: err });
    });
    if (missing.length) {
      throw new Error(`backup ${b.id} is incomplete: ${missing.length} filestore file(s) are missing from the backup store (${missing.slice(0, 3).map((e) => e.p).join(', ')}${missing.length > 3 ? ', …' : ''}); nothing was changed; restore another backup`);
    }
  } else if (fs) await check(fs.key, fs.bytes, fs.sha256, 'the filestore archive');
}

export interface RestoreInput {
  runId: number;
  env: EnvironmentRow;
  /** The environment's database server and database (infra.database). */
  target: PgTarget;
  /** The environment's filestore directory (infra.filestore), or null. */
  filestore: string | null;
  /** "<database> on <server>", for the log. */
  where: string;
  backup: BackupRow;
  backups: BackupCatalog;
  /** The store to read it from (the one verifyBackup returned); the first that holds it by default. */
  store?: BackupStore;
  log: (line: string, stream?: 'stdout' | 'stderr') => Promise<void>;
  signal: AbortSignal;
  /** Runs on the restored database before it is switched in (the clone rules, for instance). */
  beforeSwitch?: (newDb: string) => Promise<void>;
  /**
   * A database on the same server holding exactly the backup's data (a clone's masked copy): copied
   * with CREATE DATABASE … TEMPLATE, a file copy, instead of pg_restore rebuilding every index.
   */
  template?: string;
  /**
   * Like template, but the database itself becomes the new one (renamed: no copy at all); for a
   * database nothing else needs afterwards.
   */
  adopt?: string;
  /**
   * The backup's filestore, already being unpacked by the caller into the side directory
   * (sideDir(filestore, 'new', runId), see unpackFilestore): awaited instead of unpacked here. A clone
   * starts it as soon as its filestore is stored, while its dump is still being written; it removes what
   * earlier runs left beside the environment first (removeLeftovers), so this does not again.
   */
  unpacking?: Promise<void>;
  isActive: (runId: number) => Promise<boolean>;
}

/**
 * Rebuilds a backup's filestore into `dir` (a side directory, created here) as the run user; an objects
 * filestore is rebuilt from the store, each file checked before it is emitted: a damaged one fails here,
 * before any switch.
 */
export async function unpackFilestore(store: BackupStore, projectId: string, m: Pick<BackupManifest, 'filestore' | 'createdAt'>, dir: string, log: RestoreInput['log'], signal: AbortSignal): Promise<void> {
  if (!m.filestore) throw new Error('the backup has no filestore');
  await runFs.mkdir(dir);
  await log(`unpacking the filestore beside the current one (${m.filestore.files} files)`);
  const tar = spawnTool('tar', ['--extract', '--file=-', '--directory', dir, '--no-same-owner'], { signal, stdin: 'pipe' });
  await feedTool(tar, filestoreStream(store, projectId, m, signal), [progress((l) => void log(l), 'filestore')], signal);
  await log(`filestore unpacked beside the current one (${m.filestore.files} files)`);
}

/** Restores a verified backup beside the environment and switches it in. */
export async function restoreBackup({ runId, env, target, filestore, where, backup: b, backups, store: from, log, signal, beforeSwitch, template, adopt, unpacking, isActive }: RestoreInput): Promise<{ database: string; filestoreFiles: number | null }> {
  if (b.manifest.filestore && !filestore) {
    throw new Error(`backup ${b.id} has a filestore but ${env.name} has no filestore root; an admin sets one (odooops env set PROJECT ${env.name} --filestore ROOT) and restore again`);
  }
  const store = template || adopt ? undefined : from ?? (await backups.storeOf(b));
  const admin = await maintenance(target);
  const newDb = sideName(env.db_name, 'new', runId);
  const newFs = filestore && b.manifest.filestore ? sideDir(filestore, 'new', runId) : null;
  const onAbort = () => void admin.end().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  let dump: OpenedDump | undefined;
  try {
    const server = (await admin.query('show server_version')).rows[0].server_version as string;
    const pgRestore = await findPgTool('pg_restore', server);
    // A caller already unpacking into the side directory removed the leftovers before it began.
    const removed = unpacking ? [] : await removeLeftovers(admin, env.db_name, filestore, ['new', 'old'], { runId, isActive, say: (l) => log(l) });
    if (removed.length) await log(`removed what an interrupted earlier run left: ${removed.join(', ')}`);
    const into = { ...target, database: newDb };
    // The dump is read and checked before the side database exists: a corrupt one leaves the server as it was.
    const { dump: part } = b.manifest;
    if (store) {
      dump = await openDump({
        store, others: async () => (await backups.storesOf(b)).filter((s) => s.name !== store.name), what: `backup ${b.id}`,
        key: part.key, bytes: part.bytes, sha256: part.sha256, pgRestore, env: pgEnv(into), log: (l) => log(l), signal,
        args: ['--no-owner', '--no-privileges', '--exit-on-error', ...connectionArgs(into), '--dbname', newDb],
        scratch: { prefix: `odooops-restore-${env.id}-`, runId, isActive },
      });
    }
    if (adopt) {
      await log(`${adopt} becomes ${newDb} (${where}, PostgreSQL ${server.split(' ')[0]}), renamed, not copied`);
      try {
        await admin.query(`alter database ${pg.escapeIdentifier(adopt)} rename to ${pg.escapeIdentifier(newDb)}`);
      } catch (err) {
        throw new Error(`cannot rename ${adopt} to ${newDb} as ${target.user ?? 'the default user'}: ${(err as Error).message}`);
      }
    } else {
      await log(`creating ${newDb} (${where}, PostgreSQL ${server.split(' ')[0]})${template ? ` as a copy of ${template}` : ''}`);
      try {
        await admin.query(`create database ${pg.escapeIdentifier(newDb)} template ${pg.escapeIdentifier(template ?? 'template0')}${template ? '' : ` encoding 'UTF8'`}`);
      } catch (err) {
        throw await createDatabaseError(admin, newDb, err, target.user ?? 'the default user');
      }
    }
    try {
      const database = (async () => {
        if (!dump) await log('database in place');
        else {
          await log(`pg_restore into ${newDb}`);
          await dump.restore();
          await dump.close();
          await log('database restored');
        }
      })();
      const files = (async () => {
        if (newFs && unpacking) await unpacking;
        else if (newFs && b.manifest.filestore) {
          await unpackFilestore(store ?? (await backups.storeOf(b)), b.project_id, b.manifest, newFs, log, signal);
        } else if (filestore) {
          await log(`backup ${b.id} has no filestore: the environment's filestore is left as it is`, 'stderr');
        }
      })();
      // The database and the filestore are restored at once (one is mostly the database server's work, the
      // other the disk's). When one fails the other runs to its end (stopping a tool half-way leaves its
      // streams and processes to tidy); then both are removed, and the database's failure, or else the
      // filestore's, is the one reported.
      const settled = await Promise.allSettled([database, files]);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (beforeSwitch) await beforeSwitch(newDb);
      signal.throwIfAborted();
      await switchOver(admin, { db: env.db_name, newDb, filestore: newFs ? filestore : null, newFilestore: newFs, runId }, (l) => log(l));
    } catch (err) {
      await log(`restore failed, removing ${newDb}${newFs ? ` and ${newFs}` : ''}; ${env.db_name} was not changed`, 'stderr');
      if (signal.aborted) {
        // The maintenance connection closes on abort: clean up on a fresh one.
        const c = await maintenance(target).catch(() => undefined);
        if (c) await dropDatabase(c, newDb).catch(() => {}).finally(() => c.end().catch(() => {}));
      } else {
        await dropDatabase(admin, newDb).catch(() => {});
      }
      if (newFs) await runFs.rm(newFs);
      throw err;
    }
    return { database: env.db_name, filestoreFiles: b.manifest.filestore?.files ?? null };
  } finally {
    signal.removeEventListener('abort', onAbort);
    await dump?.close();
    await admin.end().catch(() => {});
  }
}

export const restoreExecutor = defineExecutor({
  kind: 'restore',
  description: 'Restore a backup into the environment (verified first; switched in only when complete)',
  params: restoreParams,
  async execute({ run, environment: env, params, log, signal, infra, backups, runIsActive, issueMailLogin }) {
    const backup = await backups.get(params.backup);
    const refused = restoreRefusal(backup, env);
    if (refused) throw new Error(refused);
    await log(`backup ${backup.id}: ${backup.kind} of ${backup.manifest.database}, ${backup.manifest.createdAt}, Odoo ${backup.manifest.odoo.version}`);
    // The dump is left to restoreBackup, which checks it on its one read from the store.
    const store = await verifyBackup(backup, backups, (l) => log(l), signal, { dump: false });
    const done = await restoreBackup({
      runId: run.id, env, target: infra.database(env), filestore: infra.filestore(env), where: infra.describe(env), backup, backups, store, log, signal, isActive: runIsActive,
      // A neutralized backup restored into staging or development sends to the catcher with a fresh login.
      beforeSwitch: env.stage === 'production' ? undefined : catchMailBeforeSwitch({ env, target: infra.database(env), issue: issueMailLogin, log: (l) => log(l), onlyIfNeutralized: true }),
    });
    await log(`restored backup ${backup.id} into ${env.name}`);
    return { backupId: backup.id, ...done };
  },
});
