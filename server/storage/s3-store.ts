// PLACEHOLDER (branch stores only): the s3 engineer's server/storage/s3-store.ts replaces this file at
// merge. Same exported signatures; a minimal store on the AWS SDK v3 so the stores' tests can run.
import { DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, AbortMultipartUploadCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import type { BackupStore, StoredObject, StoredPart } from './backup-store.ts';
import { BackupObjectMissing, contentKeyOf, hashing } from './backup-store.ts';

export interface S3StoreConfig { name: string; endpoint?: string; region: string; bucket: string; prefix?: string; forcePathStyle?: boolean; accessKeyId: string; secretAccessKey: string; checksums?: boolean; partSizeBytes?: number; queueSize?: number }

export class S3BackupStore implements BackupStore {
  readonly name: string;
  private readonly c: S3StoreConfig;
  private readonly client: S3Client;
  private readonly prefix: string;
  constructor(c: S3StoreConfig) {
    this.c = c;
    this.name = c.name;
    this.prefix = c.prefix ? c.prefix.replace(/\/*$/, '/') : '';
    this.client = new S3Client({
      region: c.region, endpoint: c.endpoint, forcePathStyle: c.forcePathStyle,
      credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }, maxAttempts: 2,
    });
  }
  private k(key: string) { return `${this.prefix}${key}`; }
  locationOf(key: string): string { return `s3:${this.c.bucket}/${this.k(key)}`; }
  async put(key: string, data: Readable, signal?: AbortSignal): Promise<StoredPart> {
    const h = hashing();
    data.on('error', (e) => h.destroy(e));
    const up = new Upload({ client: this.client, params: { Bucket: this.c.bucket, Key: this.k(key), Body: data.pipe(h) }, partSize: this.c.partSizeBytes ?? 5 * 1024 * 1024, queueSize: this.c.queueSize ?? 2 });
    const onAbort = () => void up.abort().catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await up.done();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return h.result();
  }
  async get(key: string): Promise<Readable> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.c.bucket, Key: this.k(key) }));
      return r.Body as Readable;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw new BackupObjectMissing(key, this.locationOf(key));
      throw err;
    }
  }
  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.c.bucket, Key: this.k(key) }));
      return true;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
      throw err;
    }
  }
  localPath(_key: string): string | undefined { return undefined; }
  async remove(prefix: string): Promise<void> {
    const keys: string[] = [];
    for await (const o of this.walk(prefix)) keys.push(this.k(o.key));
    for (let i = 0; i < keys.length; i += 1000) {
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.c.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
    }
  }
  async list(prefix: string): Promise<string[]> {
    const out = new Set<string>();
    let token: string | undefined;
    const p = `${this.k(prefix)}/`;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.c.bucket, Prefix: p, Delimiter: '/', ContinuationToken: token }));
      for (const cp of r.CommonPrefixes ?? []) out.add(cp.Prefix!.slice(p.length).replace(/\/$/, ''));
      for (const o of r.Contents ?? []) out.add(o.Key!.slice(p.length));
      token = r.NextContinuationToken;
    } while (token);
    return [...out];
  }
  async *walk(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined;
    const p = `${this.k(prefix)}/`;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.c.bucket, Prefix: p, ContinuationToken: token }));
      for (const o of r.Contents ?? []) yield { key: o.Key!.slice(this.prefix.length), bytes: o.Size ?? 0, modified: o.LastModified ?? new Date(0) };
      token = r.NextContinuationToken;
    } while (token);
  }
  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.c.bucket, Key: this.k(key) }));
  }
  contentKey(projectId: string, sha1: string): string { return contentKeyOf(projectId, sha1); }
  async abortIncompleteUploads(prefix: string, olderThan?: Date): Promise<number> {
    const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.c.bucket, Prefix: this.k(prefix) }));
    let n = 0;
    for (const u of r.Uploads ?? []) {
      if (olderThan && u.Initiated && u.Initiated > olderThan) continue;
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.c.bucket, Key: u.Key!, UploadId: u.UploadId! }));
      n++;
    }
    return n;
  }
  async usage(prefix = ''): Promise<number> {
    let total = 0;
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.c.bucket, Prefix: this.k(prefix), ContinuationToken: token }));
      for (const o of r.Contents ?? []) total += o.Size ?? 0;
      token = r.NextContinuationToken;
    } while (token);
    return total;
  }
}
