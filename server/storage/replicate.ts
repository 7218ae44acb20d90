// Copies a backup from the store it was written to into another (a project's copy), in the same run.
// Every object is read back from the first store and its checksum checked as it streams, so a copy that
// succeeds also proves the first store holds what the manifest says. The manifest goes last: a store
// holds a backup only once its manifest is there (storeOf looks for it).
import type { BackupManifest } from '../../contract/index.ts';
import { hashing, type BackupStore } from './backup-store.ts';
import { isObjects, readIndex } from './filestore-objects.ts';

/** What a copied object must hash to. */
interface Expect {
  algorithm: 'sha256' | 'sha1';
  digest: string;
  bytes: number | null;
  what: string;
}

/** Copies one object, checking what it reads against `expect`; a mismatch fails the put, leaving nothing at toKey. */
function copier(from: BackupStore, to: BackupStore, out: Replicated, signal?: AbortSignal) {
  return async (fromKey: string, toKey: string, expect: Expect | null) => {
    signal?.throwIfAborted();
    const src = await from.get(fromKey);
    // A mismatch fails the stream at its end, so the put fails and leaves nothing under toKey.
    const d = hashing(expect ? {
      algorithm: expect.algorithm,
      check: (got) => got.digest === expect.digest && (expect.bytes === null || got.bytes === expect.bytes) ? null
        : new Error(`${expect.what} has ${expect.algorithm} ${got.digest} (${got.bytes} bytes), the backup recorded ${expect.digest}${expect.bytes === null ? '' : ` (${expect.bytes} bytes)`}`),
    } : {});
    // A failing read (a missing or undecryptable part) must fail the put, which then leaves nothing behind.
    src.on('error', (err) => d.destroy(err));
    const part = await to.put(toKey, src.pipe(d), signal);
    out.objects++;
    out.bytes += part.bytes;
  };
}

/**
 * Copies a project's filestore files (content objects, by SHA-1) that `to` lacks from `from`, each
 * checked by its SHA-1 as it streams (a clone from a backup that lives in another store than the one
 * the clone is written to).
 */
export async function replicateContents(from: BackupStore, to: BackupStore, projectId: string, sha1s: Iterable<string>, signal?: AbortSignal): Promise<Replicated> {
  const out: Replicated = { objects: 0, bytes: 0, contentsPresent: 0 };
  const copy = copier(from, to, out, signal);
  for (const sha1 of sha1s) {
    const toKey = to.contentKey(projectId, sha1);
    if (await to.exists(toKey)) {
      out.contentsPresent++;
      continue;
    }
    await copy(from.contentKey(projectId, sha1), toKey, { algorithm: 'sha1', digest: sha1, bytes: null, what: `the filestore file ${sha1} read back from the backup store "${from.name}"` });
  }
  return out;
}

export interface ReplicateOptions {
  /** The SHA-256 of manifest.json as recorded (the backup row's sha256): checked like the parts. */
  manifestSha256?: string;
  /**
   * Content objects (filestore files by SHA-1) the backup lists: each is copied from
   * from.contentKey(project, sha1) to to.contentKey(project, sha1) when the copy store lacks it.
   */
  contents?: AsyncIterable<string>;
  /** The project the content objects belong to; the first segment of the backup's keys by default. */
  projectId?: string;
  signal?: AbortSignal;
}

export interface Replicated {
  objects: number;
  bytes: number;
  /** Content objects the copy store already had. */
  contentsPresent: number;
}

/**
 * Copies every object of a backup; on failure removes what it wrote of the backup's own prefix from
 * `to` (content objects it added stay: they are shared, and the sweep frees those no backup lists).
 */
export async function replicateBackup(from: BackupStore, to: BackupStore, manifest: BackupManifest, opts: ReplicateOptions = {}): Promise<Replicated> {
  const prefix = manifest.dump.key.replace(/\/dump\.pgc$/, '');
  const out: Replicated = { objects: 0, bytes: 0, contentsPresent: 0 };
  const copy = copier(from, to, out, opts.signal);
  const inFrom = (what: string) => `${what} read back from the backup store "${from.name}"`;
  try {
    await copy(manifest.dump.key, manifest.dump.key, { algorithm: 'sha256', digest: manifest.dump.sha256, bytes: manifest.dump.bytes, what: inFrom('the database dump') });
    const f = manifest.filestore;
    let contents = opts.contents;
    if (isObjects(f)) {
      await copy(f.index.key, f.index.key, { algorithm: 'sha256', digest: f.index.sha256, bytes: f.index.bytes, what: inFrom('the filestore index') });
      // The files the index lists, each once (readIndex checks the index's SHA-256 again).
      contents ??= (async function* () {
        yield* new Set((await readIndex(from, f, opts.signal)).map((e) => e.s));
      })();
    } else if (f) {
      await copy(f.key, f.key, { algorithm: 'sha256', digest: f.sha256, bytes: f.bytes, what: inFrom('the filestore archive') });
    }
    if (contents) {
      const project = opts.projectId ?? prefix.split('/')[0]!;
      for await (const sha1 of contents) {
        const toKey = to.contentKey(project, sha1);
        if (await to.exists(toKey)) {
          out.contentsPresent++;
          continue;
        }
        await copy(from.contentKey(project, sha1), toKey, { algorithm: 'sha1', digest: sha1, bytes: null, what: inFrom(`the filestore file ${sha1}`) });
      }
    }
    const manifestKey = `${prefix}/manifest.json`;
    // The same bytes, not the manifest written again: verify compares them with the recorded SHA-256.
    await copy(manifestKey, manifestKey, opts.manifestSha256 ? { algorithm: 'sha256', digest: opts.manifestSha256, bytes: null, what: inFrom('manifest.json') } : null);
    return out;
  } catch (err) {
    await to.remove(prefix).catch(() => {});
    throw err;
  }
}
