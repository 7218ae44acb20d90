// Where backups live. A local directory by default; the interface is what an S3-compatible or
// Supabase Storage store implements: streamed puts that report size and SHA-256, streamed gets, and
// whole-backup deletes. A put is atomic: a failed or aborted one leaves nothing behind.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupManifest } from '../../contract/index.ts';

export interface StoredPart {
  bytes: number;
  sha256: string;
}

export interface PutOptions {
  digest?: boolean;
}

/** One object found by walk(). */
export interface StoredObject {
  key: string;
  bytes: number;
  /** When it was written (S3: LastModified); retention's sweep leaves objects newer than a running backup. */
  modified: Date;
}

export interface BackupStore {
  /** The registry's name for the store ("default": the server's own directory, --backup-dir). */
  readonly name: string;
  /** How the backups table names this store's objects: `<scheme>:<root>/<key>`. */
  locationOf(key: string): string;
  /** With `digest: false` the SHA-256 is not computed (sha256 is ''): for objects checked otherwise (packs: each file by its SHA-1). */
  put(key: string, data: Readable, signal?: AbortSignal, opts?: PutOptions): Promise<StoredPart>;
  /** Rejects with BackupObjectMissing when the object is not there. */
  get(key: string): Promise<Readable>;
  /** Whether the object is there, without reading it (S3: a HEAD): checked before a download starts. */
  exists(key: string): Promise<boolean>;
  /** A local file path for the object, when the store has one (lets pg_restore run in parallel). */
  localPath(key: string): string | undefined;
  /** Removes every object under the prefix (a whole backup). */
  remove(prefix: string): Promise<void>;
  /** The names one level under a prefix (S3: the common prefixes of a delimited listing); none: []. */
  list(prefix: string): Promise<string[]>;
  /** Every object under a prefix, at any depth (S3: an undelimited listing), in no particular order. */
  walk(prefix: string): AsyncIterable<StoredObject>;
  /** Deletes one object; one already gone is not an error. */
  delete(key: string): Promise<void>;
  /**
   * The key of the project's content object for a filestore file with this SHA-1 (Odoo names its files
   * so). An encrypting store names it by a keyed hash instead, so a listing of the store does not tell
   * which files a project holds.
   */
  contentKey(projectId: string, sha1: string): string;
  /**
   * Ends uploads under the prefix that never finished (an S3 multipart upload a killed writer left,
   * whose parts the service keeps, and bills, until they are aborted); started before `olderThan`.
   * Stores whose puts leave nothing behind when the process dies do not have it.
   */
  abortIncompleteUploads?(prefix: string, olderThan?: Date, keep?: (key: string) => boolean): Promise<number>;
  /** The size of what get() returns for an object of `storedBytes` in the store (an encrypting store adds a header and tags). */
  plainSize?(storedBytes: number): number;
  /**
   * get() hands on only bytes that verified as this object's (an encrypting store: each chunk's tag,
   * under the object's name), so a reader may use them before the whole object's checksum is known.
   */
  readonly authenticates?: boolean;
}

/**
 * An object a backup's manifest lists is not in the store (removed by hand, a lost volume, a worker
 * pointed at another store). The message names the key only: it reaches API answers and run errors,
 * where the store's own location (a path on the worker) has no business; `location` keeps it for logs.
 */
export class BackupObjectMissing extends Error {
  readonly key: string;
  readonly location: string;
  constructor(key: string, location: string) {
    super(`backup object ${key} is missing from the backup store`);
    this.name = 'BackupObjectMissing';
    this.key = key;
    this.location = location;
  }
}

/** Which parts of a backup are gone from the store (none: an empty list). */
export async function missingParts(store: BackupStore, manifest: BackupManifest): Promise<('dump' | 'filestore')[]> {
  const parts = [['dump', manifest.dump], ['filestore', manifest.filestore]] as const;
  const missing: ('dump' | 'filestore')[] = [];
  // An objects filestore (filestore-objects.ts): its index here; its objects are checked there (missingObjects).
  for (const [name, part] of parts) if (part && !(await store.exists('index' in part ? part.index.key : part.key))) missing.push(name);
  return missing;
}

/** What a hashing stream saw. */
export interface Digested {
  bytes: number;
  digest: string;
}

/**
 * Counts bytes and hashes what streams through (SHA-256 unless told). With `check`, the stream fails at
 * its end when `check` returns an error for what it saw: a put it feeds then fails and leaves nothing.
 */
export function hashing(o: { algorithm?: 'sha256' | 'sha1' | 'none'; check?: (got: Digested) => Error | null } = {}): Transform & { result(): StoredPart; digested(): Digested } {
  // 'none': counts only (a put told not to digest).
  const hash = o.algorithm === 'none' ? { update: () => {}, digest: () => '' } : createHash(o.algorithm ?? 'sha256');
  let bytes = 0;
  let digest: string | undefined;
  const digested = () => ({ bytes, digest: (digest ??= hash.digest('hex')) });
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      cb(o.check?.(digested()) ?? null);
    },
  }) as Transform & { result(): StoredPart; digested(): Digested };
  t.digested = digested;
  t.result = () => ({ bytes, sha256: digested().digest });
  return t;
}

const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** The one rule for keys in every store: segments of safe characters, none of them "." or "..". */
export function checkKey(key: string): void {
  if (!KEY.test(key) || key.split('/').some((p) => p === '.' || p === '..')) throw new Error(`invalid backup key: ${key}`);
}

export class LocalBackupStore implements BackupStore {
  readonly root: string;
  readonly name: string;
  constructor(root: string, name = 'default') {
    this.root = resolve(root);
    this.name = name;
  }

  private path(key: string): string {
    checkKey(key);
    const p = join(this.root, key);
    if (!p.startsWith(this.root + sep)) throw new Error(`invalid backup key: ${key}`);
    return p;
  }

  locationOf(key: string): string {
    return `file:${this.path(key)}`;
  }

  async put(key: string, data: Readable, signal?: AbortSignal, opts: PutOptions = {}): Promise<StoredPart> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    // Its own temporary name: two writers of one object (two backups storing the same new file) never
    // remove or rename each other's half-written file.
    const tmp = `${path}.${randomBytes(6).toString('hex')}.partial`;
    const h = hashing({ algorithm: opts.digest === false ? 'none' : 'sha256' });
    const out = createWriteStream(tmp, { flags: 'wx' });
    try {
      await pipeline(data, h, out, { signal });
      await rename(tmp, path);
    } catch (err) {
      // A put that fails at once may fail before the file is even opened: the open still creates it
      // afterwards, so the temporary file is removed only once the stream has closed.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await rm(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        // The path stays out of the message (it becomes the run's error, which members read); the operator knows the store.
        throw new Error(`the backup store is full (${code}); free space in it or point the worker at another store (--backup-dir), then run the backup again`, { cause: err });
      }
      throw err;
    }
    return h.result();
  }

  async get(key: string): Promise<Readable> {
    const path = this.path(key);
    // Opened before the stream is handed out: a missing file fails here, not after a response's headers.
    const file = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new BackupObjectMissing(key, path);
      throw err;
    });
    return file.createReadStream();
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.path(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
      throw err;
    }
  }

  localPath(key: string): string | undefined {
    const p = this.path(key);
    return existsSync(p) ? p : undefined;
  }

  async remove(prefix: string): Promise<void> {
    await rm(this.path(prefix), { recursive: true, force: true });
  }

  async list(prefix: string): Promise<string[]> {
    return readdir(this.path(prefix)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
      throw err;
    });
  }

  async *walk(prefix: string): AsyncIterable<StoredObject> {
    const base = this.path(prefix);
    const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
      throw err;
    });
    for (const e of entries) {
      // A put in progress writes <key>.partial: not an object yet.
      if (!e.isFile() || e.name.endsWith('.partial')) continue;
      const full = join(e.parentPath, e.name);
      const s = await stat(full).catch(() => null);
      if (s) yield { key: `${prefix}/${full.slice(base.length + 1)}`, bytes: s.size, modified: s.mtime };
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  contentKey(projectId: string, sha1: string): string {
    return contentKeyOf(projectId, sha1);
  }

  /** Removes the .partial files of puts that never finished (a killed writer's), last written before `olderThan`. */
  async abortIncompleteUploads(prefix: string, olderThan: Date = new Date(), keep?: (key: string) => boolean): Promise<number> {
    const base = this.path(prefix);
    const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
      throw err;
    });
    let removed = 0;
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.partial')) continue;
      const full = join(e.parentPath, e.name);
      if (keep?.(`${prefix}/${full.slice(base.length + 1)}`)) continue;
      const s = await stat(full).catch(() => null);
      if (s && s.mtime < olderThan) {
        await rm(full, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

/** Where a plain store keeps a project's filestore file by its SHA-1: <project>/files/<ab>/<sha1>. */
export function contentKeyOf(projectId: string, name: string): string {
  if (!/^[0-9a-f]{40,64}$/.test(name)) throw new Error(`invalid content name: ${name}`);
  return `${projectId}/files/${name.slice(0, 2)}/${name}`;
}
