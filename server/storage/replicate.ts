// Copies a backup from the store it was written to into another (a project's copy), in the same run.
// Every object is read back from the first store and its checksum checked as it streams, so a copy that
// succeeds also proves the first store holds what the manifest says. The manifest goes last: a store
// holds a backup only once its manifest is there (storeOf looks for it).
import { createHash } from 'node:crypto';
import { PassThrough, Transform } from 'node:stream';
import type { BackupManifest } from '../../contract/index.ts';
import type { BackupStore } from './backup-store.ts';

/** Passes bytes through and fails at the end when their digest is not the expected one. */
function checked(algorithm: 'sha256' | 'sha1', expected: string, bytes: number | null, what: string): Transform {
  const h = createHash(algorithm);
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      const got = h.digest('hex');
      if (got !== expected || (bytes !== null && n !== bytes)) {
        cb(new Error(`${what} has ${algorithm} ${got} (${n} bytes), the backup recorded ${expected}${bytes === null ? '' : ` (${bytes} bytes)`}`));
      } else cb();
    },
  });
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
  const copy = async (fromKey: string, toKey: string, check: Transform) => {
    opts.signal?.throwIfAborted();
    const src = await from.get(fromKey);
    // A failing read (a corrupt or missing part) must fail the put, which then leaves nothing behind.
    src.on('error', (err) => check.destroy(err));
    const part = await to.put(toKey, src.pipe(check), opts.signal);
    out.objects++;
    out.bytes += part.bytes;
  };
  const inFrom = (what: string) => `${what} read back from the backup store "${from.name}"`;
  try {
    await copy(manifest.dump.key, manifest.dump.key, checked('sha256', manifest.dump.sha256, manifest.dump.bytes, inFrom('the database dump')));
    if (manifest.filestore) {
      const f = manifest.filestore;
      await copy(f.key, f.key, checked('sha256', f.sha256, f.bytes, inFrom('the filestore archive')));
    }
    if (opts.contents) {
      const project = opts.projectId ?? prefix.split('/')[0]!;
      for await (const sha1 of opts.contents) {
        const toKey = to.contentKey(project, sha1);
        if (await to.exists(toKey)) {
          out.contentsPresent++;
          continue;
        }
        await copy(from.contentKey(project, sha1), toKey, checked('sha1', sha1, null, inFrom(`the filestore file ${sha1}`)));
      }
    }
    const manifestKey = `${prefix}/manifest.json`;
    // The same bytes, not the manifest written again: verify compares them with the recorded SHA-256.
    await copy(manifestKey, manifestKey, opts.manifestSha256 ? checked('sha256', opts.manifestSha256, null, inFrom('manifest.json')) : new PassThrough());
    return out;
  } catch (err) {
    await to.remove(prefix).catch(() => {});
    throw err;
  }
}
