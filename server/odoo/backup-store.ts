// Where backups live. A local directory by default; the interface is what an S3-compatible or
// Supabase Storage store implements: streamed puts that report size and SHA-256, streamed gets, and
// whole-backup deletes. A put is atomic: a failed or aborted one leaves nothing behind.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface StoredPart {
  bytes: number;
  sha256: string;
}

export interface BackupStore {
  /** How the backups table names this store's objects: `<scheme>:<root>/<key>`. */
  locationOf(key: string): string;
  put(key: string, data: Readable, signal?: AbortSignal): Promise<StoredPart>;
  get(key: string): Promise<Readable>;
  /** A local file path for the object, when the store has one (lets pg_restore run in parallel). */
  localPath(key: string): string | undefined;
  /** Removes every object under the prefix (a whole backup). */
  remove(prefix: string): Promise<void>;
}

/** Counts bytes and hashes what streams through. */
export function hashing(): Transform & { result(): StoredPart } {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  }) as Transform & { result(): StoredPart };
  t.result = () => ({ bytes, sha256: hash.digest('hex') });
  return t;
}

const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export class LocalBackupStore implements BackupStore {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    if (!KEY.test(key) || key.split('/').some((p) => p === '.' || p === '..')) throw new Error(`invalid backup key: ${key}`);
    const p = join(this.root, key);
    if (!p.startsWith(this.root + sep)) throw new Error(`invalid backup key: ${key}`);
    return p;
  }

  locationOf(key: string): string {
    return `file:${this.path(key)}`;
  }

  async put(key: string, data: Readable, signal?: AbortSignal): Promise<StoredPart> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.partial`;
    const h = hashing();
    try {
      await pipeline(data, h, createWriteStream(tmp, { flags: 'wx' }), { signal });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw new Error(`the backup store ${this.root} is full (${code}); free space there or point the worker at another store, then run the backup again`);
      }
      throw err;
    }
    return h.result();
  }

  async get(key: string): Promise<Readable> {
    const path = this.path(key);
    try {
      await stat(path);
    } catch {
      throw new Error(`backup object ${key} is missing from the store ${this.root}`);
    }
    return createReadStream(path);
  }

  localPath(key: string): string | undefined {
    const p = this.path(key);
    return existsSync(p) ? p : undefined;
  }

  async remove(prefix: string): Promise<void> {
    await rm(this.path(prefix), { recursive: true, force: true });
  }
}
