// Writes one backup into the store: the database dump streamed from pg_dump and the filestore as
// content objects (only the new files uploaded, storage/filestore-objects.ts) with its index, then the
// manifest with the SHA-256 of each part, then its row in ops.backups. Anything half-written is removed
// when a step fails (content objects stay: other backups may list them; the sweep frees the rest).
import { Readable } from 'node:stream';
import type { BackupManifest } from '../../contract/index.ts';
import type { BackupCatalog } from '../worker/executor.ts';
import type { OdooFacts } from './inspect.ts';
import { mib, progress } from './inspect.ts';
import { withTool, type spawnTool } from './pg-tools.ts';
import { writeFilestoreObjects, type WriteObjectsInput } from '../storage/filestore-objects.ts';

type Tool = ReturnType<typeof spawnTool>;

export interface WriteBackupInput {
  backups: BackupCatalog;
  projectId: string;
  prefix: string;
  kind: BackupManifest['kind'];
  database: string;
  facts: OdooFacts;
  pgDumpVersion: string;
  /** Starts pg_dump -Fc writing to its stdout. */
  dump: () => Tool;
  /** The filestore's files (where they are, or already stored ones), or null for no filestore. */
  filestore: Pick<WriteObjectsInput, 'dirs' | 'known' | 'incoming'> | null;
  clone?: BackupManifest['clone'];
  /**
   * Told the filestore part as soon as it is stored, while the dump may still be running (a clone
   * starts unpacking it into the environment then). Its objects are safe from the sweep from then on:
   * the content lock is held until the backup's row is recorded, which then lists them.
   */
  onFilestore?: (part: NonNullable<BackupManifest['filestore']>) => void;
  log: (line: string) => Promise<void>;
  signal: AbortSignal;
}

export async function writeBackup(o: WriteBackupInput): Promise<{ id: string; bytes: number; manifest: BackupManifest; manifestSha256: string }> {
  const store = o.backups.store;
  const say = (l: string) => void o.log(l);
  // A writer killed mid-way (kill -9, a lost machine) could not remove its half-written parts: the next
  // backup of the environment does.
  const abandoned = await o.backups.removeAbandoned();
  if (abandoned.prefixes.length) await o.log(`removed ${abandoned.prefixes.length} unfinished backup(s) an interrupted run left in the store: ${abandoned.prefixes.join(', ')}`);
  if (abandoned.uploads) await o.log(`ended ${abandoned.uploads} unfinished upload(s) an interrupted run left in the store`);
  // The dump and the filestore are written at once (one is mostly the database's CPU, the other disk);
  // when either fails the other is stopped before the half-written backup is removed.
  const stop = new AbortController();
  const signal = AbortSignal.any([o.signal, stop.signal]);
  // From the listing of the store's objects until the row is recorded, a sweep must not run: it would
  // free objects this backup found there and does not upload again.
  const release = o.filestore ? await o.backups.holdContent() : null;
  try {
    const dumpWork = (async () => {
      const dump = o.dump();
      const part = await withTool(dump, store.put(`${o.prefix}/dump.pgc`, dump.child.stdout!.pipe(progress(say, 'dump')), signal));
      await o.log(`dump: ${mib(part.bytes)}, sha256 ${part.sha256}`);
      return part;
    })();
    const filesWork = (async (): Promise<BackupManifest['filestore']> => {
      if (!o.filestore) return null;
      const part = await writeFilestoreObjects({ store, projectId: o.projectId, prefix: o.prefix, ...o.filestore, log: say, signal });
      await o.log(`filestore: ${part.files} files (${mib(part.bytes)}), ${part.uploaded.files} new uploaded (${mib(part.uploaded.bytes)}), the rest already in the store; index sha256 ${part.index.sha256}`);
      if (!stop.signal.aborted) o.onFilestore?.(part);
      return part;
    })();
    // The first failure is the cause; the other part's is only "aborted".
    let cause: unknown;
    const settled = await Promise.allSettled([dumpWork, filesWork].map((p) => p.catch((err) => {
      if (!stop.signal.aborted) {
        cause = err;
        stop.abort(err);
      }
      throw err;
    })));
    if (settled.some((r) => r.status === 'rejected')) throw cause;
    const dumpPart = (settled[0] as PromiseFulfilledResult<Awaited<typeof dumpWork>>).value;
    const filestore = (settled[1] as PromiseFulfilledResult<BackupManifest['filestore']>).value;
    const manifest: BackupManifest = {
      format: 'odooops-backup/1',
      database: o.database,
      createdAt: new Date().toISOString(),
      kind: o.kind,
      odoo: { version: o.facts.odooVersion, majorVersion: o.facts.majorVersion },
      modules: o.facts.modules,
      postgres: { server: o.facts.serverVersion, pgDump: o.pgDumpVersion },
      dump: { key: `${o.prefix}/dump.pgc`, ...dumpPart },
      filestore,
      ...(o.clone ? { clone: o.clone } : {}),
    };
    const m = await store.put(`${o.prefix}/manifest.json`, Readable.from([Buffer.from(JSON.stringify(manifest, null, 2))]), o.signal);
    const bytes = dumpPart.bytes + storedBytes(filestore) + m.bytes;
    const id = await o.backups.record(o.kind, o.prefix, bytes, m.sha256, manifest);
    return { id, bytes, manifest, manifestSha256: m.sha256 };
  } catch (err) {
    await store.remove(o.prefix).catch(() => {});
    throw err;
  } finally {
    await release?.();
  }
}

/** What a backup's filestore added to the store: a tarball, or the index and the objects it uploaded. */
export const storedBytes = (f: BackupManifest['filestore']): number =>
  !f ? 0 : 'format' in f ? f.index.bytes + f.uploaded.bytes : f.bytes;

/** A store key prefix for a new backup of an environment. */
export const backupPrefix = (projectId: string, envId: string, runId: number, suffix = '') =>
  `${projectId}/${envId}/${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, 'Z')}-run${runId}${suffix}`;

/** The store prefix a backup's parts live under (manifest.json, dump.pgc, filestore.tar). */
export const backupPrefixOf = (m: BackupManifest): string => m.dump.key.replace(/\/dump\.pgc$/, '');
