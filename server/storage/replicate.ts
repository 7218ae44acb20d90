// Copies a backup from the store it was written to into another (a project's copy), in the same run.
// Every object is read back from the first store and its checksum checked as it streams, so a copy that
// succeeds also proves the first store holds what the manifest says. The manifest goes last: a store
// holds a backup only once its manifest is there (storeOf looks for it).
import type { BackupManifest } from '../../contract/index.ts';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import { hashing, type BackupStore } from './backup-store.ts';
import { isObjects, readIndex } from './filestore-objects.ts';
import { contentMap, PACK_FILE_MAX, PackWriter, readWhole, takeFromPack, type Location } from './filestore-packs.ts';

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
    // pipeline, not pipe: a small object may be read and fail its check while the store is still
    // preparing the put (before it listens), and the error must wait for it rather than go uncaught.
    const part = await to.put(toKey, pipeline(src, d, () => {}), signal);
    out.objects++;
    out.bytes += part.bytes;
  };
}

/**
 * Copies the project's filestore files (by SHA-1 and size) that `to` does not hold from `from`: small
 * ones read out of `from`'s packs (or objects) and packed anew in `to`, big ones object to object; each
 * checked by its SHA-1 on the way (a copy store, or a clone from a backup that lives in another store
 * than the one the clone is written to).
 */
export async function replicateContents(from: BackupStore, to: BackupStore, projectId: string, files: Iterable<{ s: string; n: number }>, signal?: AbortSignal): Promise<Replicated> {
  const out: Replicated = { objects: 0, bytes: 0, contentsPresent: 0, contentsCopied: 0 };
  const copy = copier(from, to, out, signal);
  const [src, dst] = await Promise.all([contentMap(from, projectId, signal), contentMap(to, projectId, signal)]);
  const what = (sha1: string) => `the filestore file ${sha1} read back from the backup store "${from.name}"`;
  const byPack = new Map<string, { s: string; at: Location }[]>();
  const own: { s: string; at: Location }[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.s)) continue;
    seen.add(f.s);
    if (dst.locate(f.s)?.n === f.n) {
      out.contentsPresent++;
      continue;
    }
    const at = src.locate(f.s);
    if (!at) throw new Error(`${what(f.s)} is missing there`);
    if (at.n !== f.n) throw new Error(`${what(f.s)} has ${at.n} bytes, the backup recorded ${f.n}`);
    if (at.pack) {
      let list = byPack.get(at.key);
      if (!list) byPack.set(at.key, (list = []));
      list.push({ s: f.s, at });
    } else own.push({ s: f.s, at });
  }
  const writer = new PackWriter(to, projectId, signal ?? new AbortController().signal);
  try {
    for (const [key, list] of byPack) {
      const got = await takeFromPack(from, projectId, key, list.map(({ s, at }) => ({ s, o: at.offset, n: at.n })), signal);
      for (const [i, { s }] of list.entries()) {
        const b = got[i]!;
        if (typeof b === 'string') throw new Error(`${what(s)}: ${b}`);
        await writer.add(s, Buffer.from(b));
      }
    }
    for (const { s, at } of own) {
      if (at.n <= PACK_FILE_MAX) {
        const data = await readWhole(from, at.key, PACK_FILE_MAX, signal);
        const got = createHash('sha1').update(data).digest('hex');
        if (got !== s) throw new Error(`${what(s)} has sha1 ${got}, the backup recorded ${s}`);
        await writer.add(s, data);
      } else await copy(at.key, to.contentKey(projectId, s), { algorithm: 'sha1', digest: s, bytes: at.n, what: what(s) });
    }
    out.contentsCopied = seen.size - out.contentsPresent;
    await writer.finish();
  } catch (err) {
    await writer.settle();
    throw err;
  }
  out.objects += writer.packs;
  out.bytes += writer.bytes;
  return out;
}

export interface ReplicateOptions {
  /** The SHA-256 of manifest.json as recorded (the backup row's sha256): checked like the parts. */
  manifestSha256?: string;
  /** Filestore files (SHA-1 and size) the backup lists: each is copied when the copy store lacks it (replicateContents). */
  contents?: Iterable<{ s: string; n: number }>;
  /** The project the content objects belong to; the first segment of the backup's keys by default. */
  projectId?: string;
  signal?: AbortSignal;
}

export interface Replicated {
  objects: number;
  bytes: number;
  /** Filestore files the copy store already held. */
  contentsPresent: number;
  /** Filestore files copied (into packs, or as objects of their own). */
  contentsCopied: number;
}

/**
 * Copies every object of a backup; on failure removes what it wrote of the backup's own prefix from
 * `to` (content objects it added stay: they are shared, and the sweep frees those no backup lists).
 */
export async function replicateBackup(from: BackupStore, to: BackupStore, manifest: BackupManifest, opts: ReplicateOptions = {}): Promise<Replicated> {
  const prefix = manifest.dump.key.replace(/\/dump\.pgc$/, '');
  const out: Replicated = { objects: 0, bytes: 0, contentsPresent: 0, contentsCopied: 0 };
  const copy = copier(from, to, out, opts.signal);
  const inFrom = (what: string) => `${what} read back from the backup store "${from.name}"`;
  try {
    await copy(manifest.dump.key, manifest.dump.key, { algorithm: 'sha256', digest: manifest.dump.sha256, bytes: manifest.dump.bytes, what: inFrom('the database dump') });
    const f = manifest.filestore;
    let contents = opts.contents;
    if (isObjects(f)) {
      await copy(f.index.key, f.index.key, { algorithm: 'sha256', digest: f.index.sha256, bytes: f.index.bytes, what: inFrom('the filestore index') });
      // The files the index lists (readIndex checks the index's SHA-256 again).
      contents ??= await readIndex(from, f, opts.signal);
    } else if (f) {
      await copy(f.key, f.key, { algorithm: 'sha256', digest: f.sha256, bytes: f.bytes, what: inFrom('the filestore archive') });
    }
    if (contents) {
      const done = await replicateContents(from, to, opts.projectId ?? prefix.split('/')[0]!, contents, opts.signal);
      out.objects += done.objects;
      out.bytes += done.bytes;
      out.contentsPresent += done.contentsPresent;
      out.contentsCopied += done.contentsCopied;
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
