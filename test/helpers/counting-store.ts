// A real backup store with its reads counted: every call goes to the wrapped store (local, S3,
// encrypted), and get() also counts the key, so a test can tell how often a run read an object.
import type { Readable } from 'node:stream';
import type { BackupStore, PutOptions, StoredObject, StoredPart } from '../../server/storage/backup-store.ts';

export class CountingStore implements BackupStore {
  readonly inner: BackupStore;
  readonly gets = new Map<string, number>();
  readonly abortIncompleteUploads?: BackupStore['abortIncompleteUploads'];
  readonly plainSize?: BackupStore['plainSize'];

  constructor(inner: BackupStore) {
    this.inner = inner;
    this.abortIncompleteUploads = inner.abortIncompleteUploads?.bind(inner);
    this.plainSize = inner.plainSize?.bind(inner);
  }

  /** How often get() was asked for the key. */
  count(key: string): number {
    return this.gets.get(key) ?? 0;
  }

  get name(): string {
    return this.inner.name;
  }

  get authenticates(): boolean | undefined {
    return this.inner.authenticates;
  }

  locationOf(key: string): string {
    return this.inner.locationOf(key);
  }

  put(key: string, data: Readable, signal?: AbortSignal, opts?: PutOptions): Promise<StoredPart> {
    return this.inner.put(key, data, signal, opts);
  }

  get(key: string): Promise<Readable> {
    this.gets.set(key, this.count(key) + 1);
    return this.inner.get(key);
  }

  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }

  localPath(key: string): string | undefined {
    return this.inner.localPath(key);
  }

  remove(prefix: string): Promise<void> {
    return this.inner.remove(prefix);
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  walk(prefix: string): AsyncIterable<StoredObject> {
    return this.inner.walk(prefix);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  contentKey(projectId: string, sha1: string): string {
    return this.inner.contentKey(projectId, sha1);
  }
}
