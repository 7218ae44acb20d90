// A backup store in S3-compatible object storage (AWS S3, Cloudflare R2, Backblaze B2, MinIO, Supabase
// Storage's S3 endpoint). Same contract as the local store: puts stream through a hash into a multipart
// upload and are atomic (a failed or aborted put aborts its upload, so neither an object nor orphan parts
// stay behind), gets stream and survive a connection that breaks half-way, keys follow the same rule.
// Messages name the store by its registry name only: they reach run errors, which members read, and
// the endpoint, bucket and credentials are the operator's business.
import { Readable, addAbortSignal, pipeline } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BackupObjectMissing, checkKey, contentKeyOf, hashing, type BackupStore, type PutOptions, type StoredObject, type StoredPart } from './backup-store.ts';

export interface S3StoreConfig {
  /** The registry's name for the store. */
  name: string;
  /** None: AWS; R2/B2/MinIO/Supabase Storage give theirs. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix inside the bucket ("odooops/"); every key of this store lives under it. */
  prefix?: string;
  /** MinIO, s3rver, Supabase Storage. */
  forcePathStyle?: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  /** Send CRC32 checksums the service verifies for each request (AWS, R2...; the SDK's default algorithm); default true. */
  checksums?: boolean;
  /** Multipart part size (>= 5 MiB), default 16 MiB. */
  partSizeBytes?: number;
  /** Parts in flight, default 4. */
  queueSize?: number;
}

const MiB = 1024 * 1024;
/** S3's floor for every part but the last, and its ceiling for one part. */
const MIN_PART = 5 * MiB;
const MAX_PART = 5 * 1024 * MiB;
/** How often a broken download is picked up again from the byte reached before it is an error. */
const RESUMES = 3;
/** DeleteObjects takes at most this many keys. */
const DELETE_BATCH = 1000;
/** Errors of the connection rather than of the object: a download that meets one is resumed. */
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

export class S3BackupStore implements BackupStore {
  readonly name: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  /** '' or segments ending in '/'. */
  readonly #root: string;
  readonly #checksums: boolean;
  readonly #partSize: number;
  readonly #queueSize: number;

  constructor(config: S3StoreConfig) {
    const { name } = config;
    if (!/^[A-Za-z0-9._-]{1,100}$/.test(name ?? '')) throw new Error(`invalid backup store name: ${JSON.stringify(name)}`);
    const bad = (what: string) => new Error(`backup store "${name}": ${what}; fix the store's entry in the registry`);
    if (!config.bucket) throw bad('no bucket is given');
    if (!config.region) throw bad('no region is given (AWS: the bucket\'s region; most other services accept "auto" or "us-east-1")');
    if (!config.accessKeyId || !config.secretAccessKey) throw bad('no access key id or secret access key is given');
    const prefix = (config.prefix ?? '').replace(/\/+$/, '');
    if (prefix !== '') {
      try {
        checkKey(prefix);
      } catch {
        throw bad(`the prefix ${JSON.stringify(config.prefix)} is not a key prefix (letters, digits, ".", "_", "-", separated by "/")`);
      }
    }
    const partSize = config.partSizeBytes ?? 16 * MiB;
    if (!Number.isInteger(partSize) || partSize < MIN_PART || partSize > MAX_PART) throw bad('the part size must be between 5 MiB and 5 GiB (S3\'s limits)');
    const queueSize = config.queueSize ?? 4;
    if (!Number.isInteger(queueSize) || queueSize < 1 || queueSize > 64) throw bad('the queue size (parts in flight) must be between 1 and 64');
    this.name = name;
    this.#bucket = config.bucket;
    this.#root = prefix === '' ? '' : `${prefix}/`;
    this.#checksums = config.checksums ?? true;
    this.#partSize = partSize;
    this.#queueSize = queueSize;
    this.#client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      // Parts are buffers, so a part that failed (a reset connection, a 5xx, throttling) is sent again:
      // the standard strategy backs off exponentially with jitter; five attempts ride out a short outage.
      maxAttempts: 5,
      retryMode: 'standard',
      // Services without flexible checksums (older MinIO, B2, some gateways) reject the headers.
      requestChecksumCalculation: this.#checksums ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      responseChecksumValidation: this.#checksums ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      // A connection that cannot be made in 10 s is a wrong endpoint or a network problem, and a socket
      // idle for 2 minutes is dead: without these a restore could wait forever.
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    });
  }

  /** The object key in the bucket. */
  #key(key: string): string {
    checkKey(key);
    return this.#root + key;
  }

  /** The listing prefix for everything under `prefix` ('' = the whole store). */
  #under(prefix: string): string {
    if (prefix === '') return this.#root;
    checkKey(prefix);
    return `${this.#root}${prefix}/`;
  }

  locationOf(key: string): string {
    checkKey(key);
    return `s3:${this.name}/${key}`;
  }

  async put(key: string, data: Readable, signal?: AbortSignal, opts: PutOptions = {}): Promise<StoredPart> {
    const Key = this.#key(key);
    signal?.throwIfAborted();
    const h = hashing({ algorithm: opts.digest === false ? 'none' : 'sha256' });
    // The source's own error (or the abort) is what the caller must see, not the upload's echo of it.
    let sourceError: unknown;
    pipeline(data, h, (err) => {
      if (err) sourceError ??= err;
    });
    // Aborting destroys the source: the uploader stops taking parts, lets those in flight land, and
    // returns; the upload is then aborted below, after which no part can arrive any more.
    if (signal) addAbortSignal(signal, h);
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key, Body: h, ...(this.#checksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}) },
      partSize: this.#partSize,
      queueSize: this.#queueSize,
      // This store aborts the upload itself, so it can wait for the abort and keep the first error.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      // The service failed: the source (pg_dump's output, say) must not wait for a reader for ever.
      h.destroy();
      const first = signal?.aborted ? abortError(signal) : (sourceError ?? err);
      if (upload.uploadId) {
        await this.#abortUpload(Key, upload.uploadId).catch((abortErr) => {
          throw new Error(
            `backup store "${this.name}": a failed upload of ${key} could not be aborted, so its parts stay in the bucket until ` +
              `abortIncompleteUploads or the bucket's lifecycle rule removes them (${describe(abortErr)})`,
            { cause: first },
          );
        });
      }
      if (first === err) throw this.#explain(err, `storing ${key}`);
      throw first;
    }
    if (signal?.aborted) {
      // The last part landed as the abort came: the caller sees an aborted put, so nothing may stay.
      await this.delete(key);
      throw abortError(signal);
    }
    return h.result();
  }

  async #abortUpload(Key: string, UploadId: string): Promise<void> {
    try {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key, UploadId }));
    } catch (err) {
      if (errorName(err) !== 'NoSuchUpload') throw err;
    }
  }

  async get(key: string): Promise<Readable> {
    const Key = this.#key(key);
    const first = await this.#getObject(Key, key);
    const etag = first.ETag;
    const total = first.ContentLength;
    const body = first.Body as Readable | undefined;
    if (!body || total === undefined) throw new Error(`backup store "${this.name}": the service answered the download of ${key} without a body or a length`);
    const self = this;
    async function* read(): AsyncGenerator<Buffer> {
      let current: Readable = body!;
      let reached = 0;
      let resumes = 0;
      try {
        for (;;) {
          try {
            for await (const chunk of current) {
              reached += (chunk as Buffer).length;
              yield chunk as Buffer;
            }
            if (reached >= total!) return;
            // Ended cleanly but short: the connection was closed under the response. Resumed like an error.
            throw Object.assign(new Error(`the download of ${key} ended after ${reached} of ${total} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
          } catch (err) {
            current.destroy();
            if (!isBroken(err)) throw err;
            if (resumes >= RESUMES) {
              throw new Error(`backup store "${self.name}": the download of ${key} broke ${resumes + 1} times; check the network between this worker and the store, then try again`, { cause: err });
            }
            resumes++;
            current = await self.#resume(Key, key, reached, total!, etag);
          }
        }
      } finally {
        // The reader stopped early (or failed): the response's socket goes back or away, not left open.
        current.destroy();
      }
    }
    return Readable.from(read(), { objectMode: false });
  }

  async #getObject(Key: string, key: string): Promise<GetObjectCommandOutput> {
    try {
      return await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key }));
    } catch (err) {
      if (errorName(err) === 'NoSuchKey') throw new BackupObjectMissing(key, this.locationOf(key));
      throw this.#explain(err, `reading ${key}`);
    }
  }

  /** The rest of an object from `from` on, refused if the object is no longer the one the download began with. */
  async #resume(Key: string, key: string, from: number, total: number, etag: string | undefined): Promise<Readable> {
    const changed = () => new Error(`backup store "${this.name}": ${key} changed while it was being downloaded (it was written again); start the download again`);
    let res: GetObjectCommandOutput;
    try {
      // If-Match makes a service that honours it refuse a changed object (412); the ETag check below
      // covers services that ignore it, so a changed object is an error, never a splice of two.
      res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key, Range: `bytes=${from}-`, IfMatch: etag }));
    } catch (err) {
      const name = errorName(err);
      if (name === 'PreconditionFailed' || name === 'NoSuchKey') throw changed();
      throw this.#explain(err, `reading ${key}`);
    }
    const body = res.Body as Readable;
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
    if (res.ETag !== etag || (range && Number(range[3]) !== total)) {
      body.destroy();
      throw changed();
    }
    if (!range || Number(range[1]) !== from) {
      body.destroy();
      throw new Error(`backup store "${this.name}": the service does not resume downloads (it ignored a ranged GET); the download of ${key} broke and cannot be continued`);
    }
    return body;
  }

  async exists(key: string): Promise<boolean> {
    const Key = this.#key(key);
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key }));
      return true;
    } catch (err) {
      const name = errorName(err);
      if (name !== 'NotFound' && name !== 'NoSuchKey') throw this.#explain(err, `looking for ${key}`);
    }
    // A HEAD's 404 has no body to tell a missing object from a missing bucket; a wrong bucket must not
    // look like a backup whose parts are all gone.
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
    } catch (err) {
      const name = errorName(err);
      if (name === 'NotFound' || name === 'NoSuchBucket') throw this.#explain(Object.assign(new Error('The specified bucket does not exist'), { name: 'NoSuchBucket' }), `looking for ${key}`);
      // Credentials that may read objects but not the bucket: nothing more to learn.
    }
    return false;
  }

  /** No local file: restores stream the object (pg_restore -j needs a file, so it is not offered here). */
  localPath(_key: string): string | undefined {
    return undefined;
  }

  async remove(prefix: string): Promise<void> {
    const under = this.#under(prefix);
    let batch: string[] = [];
    for await (const o of this.#listAll(under)) {
      batch.push(o.Key);
      if (batch.length === DELETE_BATCH) {
        await this.#deleteBatch(batch);
        batch = [];
      }
    }
    if (batch.length) await this.#deleteBatch(batch);
    // A put killed with the worker left an upload under the backup's prefix: its parts go with it.
    try {
      await this.#abortUploads(under, undefined);
    } catch (err) {
      // Services without ListMultipartUploads: the objects are gone, which is what remove promises;
      // their lifecycle rule (AbortIncompleteMultipartUpload) is what clears parts there.
      if (errorName(err) !== 'NotImplemented') throw err;
    }
  }

  async #deleteBatch(keys: string[]): Promise<void> {
    let res;
    try {
      res = await this.#client.send(new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
    } catch (err) {
      throw this.#explain(err, 'deleting objects');
    }
    const errors = res.Errors ?? [];
    if (errors.length) {
      const e = errors[0]!;
      throw new Error(`backup store "${this.name}": ${errors.length} of ${keys.length} objects could not be deleted (first: ${e.Key?.slice(this.#root.length)}: ${e.Code} ${e.Message ?? ''}); check the credentials may delete, then remove again`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const under = this.#under(prefix);
    const names = new Set<string>();
    let ContinuationToken: string | undefined;
    do {
      const res = await this.#call(`listing ${prefix}`, (c) => c.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: under, Delimiter: '/', ContinuationToken })));
      for (const p of res.CommonPrefixes ?? []) if (p.Prefix) names.add(p.Prefix.slice(under.length).replace(/\/$/, ''));
      for (const o of res.Contents ?? []) if (o.Key) names.add(o.Key.slice(under.length));
      ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (ContinuationToken);
    names.delete('');
    return [...names].sort();
  }

  async *walk(prefix: string): AsyncIterable<StoredObject> {
    for await (const o of this.#listAll(this.#under(prefix))) {
      const key = o.Key.slice(this.#root.length);
      // Something else wrote into the bucket under this prefix: not an object this store can address.
      if (!isKey(key)) continue;
      yield { key, bytes: o.Size, modified: o.LastModified };
    }
  }

  async *#listAll(under: string): AsyncGenerator<{ Key: string; Size: number; LastModified: Date }> {
    let ContinuationToken: string | undefined;
    do {
      const res = await this.#call('listing objects', (c) => c.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: under, ContinuationToken })));
      for (const o of res.Contents ?? []) {
        if (o.Key) yield { Key: o.Key, Size: o.Size ?? 0, LastModified: o.LastModified ?? new Date(0) };
      }
      ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string): Promise<void> {
    const Key = this.#key(key);
    await this.#call(`deleting ${key}`, (c) => c.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key })));
  }

  contentKey(projectId: string, sha1: string): string {
    return contentKeyOf(projectId, sha1);
  }

  /** Aborts multipart uploads under the prefix started before `olderThan` (what a killed writer left). Returns how many. */
  async abortIncompleteUploads(prefix: string, olderThan: Date = new Date(), keep?: (key: string) => boolean): Promise<number> {
    try {
      return await this.#abortUploads(this.#under(prefix), olderThan, keep);
    } catch (err) {
      if (errorName(err) === 'NotImplemented') {
        throw new Error(`backup store "${this.name}": the service cannot list incomplete uploads; give the bucket a lifecycle rule that aborts incomplete multipart uploads after a day instead`, { cause: err });
      }
      throw this.#explain(err, 'listing incomplete uploads');
    }
  }

  async #abortUploads(under: string, olderThan: Date | undefined, keep?: (key: string) => boolean): Promise<number> {
    let aborted = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const res = await this.#client.send(new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: under, KeyMarker, UploadIdMarker }));
      for (const u of res.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        if (olderThan && u.Initiated && u.Initiated >= olderThan) continue;
        if (keep?.(u.Key.slice(this.#root.length))) continue;
        await this.#abortUpload(u.Key, u.UploadId);
        aborted++;
      }
      if (!res.IsTruncated) return aborted;
      KeyMarker = res.NextKeyMarker;
      UploadIdMarker = res.NextUploadIdMarker;
    }
  }

  /** Bytes stored under a prefix (a listing), for "a store filling up" alerts. */
  async usage(prefix = ''): Promise<number> {
    let bytes = 0;
    for await (const o of this.#listAll(this.#under(prefix))) bytes += o.Size;
    return bytes;
  }

  async #call<T>(doing: string, request: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await request(this.#client);
    } catch (err) {
      throw this.#explain(err, doing);
    }
  }

  /** What the operator can do about a failure, naming the store and never its secret. */
  #explain(err: unknown, doing: string): Error {
    if (err instanceof BackupObjectMissing) return err;
    const name = errorName(err);
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const code = (err as NodeJS.ErrnoException).code;
    // Only the name and the service's message go along: the SDK's error carries request details.
    const cause = new Error(describe(err));
    const at = `backup store "${this.name}" (${doing})`;
    if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'AuthorizationHeaderMalformed'].includes(name)) {
      return new Error(`${at}: the service refused the credentials (${name}); check the access key id and the secret key the registry gives this store`, { cause });
    }
    if (status === 403 && !['AccessDenied', 'AllAccessDisabled', 'AccountProblem'].includes(name)) {
      // A HEAD's refusal has no body to say why: credentials are the usual reason.
      return new Error(`${at}: the service refused the request (HTTP 403); check the access key id and the secret key the registry gives this store, and that they may read, write, list and delete in its bucket`, { cause });
    }
    if (name === 'AccessDenied' || status === 403) {
      return new Error(`${at}: access denied (${name}); check that the store's credentials may read, write, list and delete in its bucket`, { cause });
    }
    if (name === 'NoSuchBucket') {
      return new Error(`${at}: the bucket does not exist; create it or correct the bucket (and region) in the registry`, { cause });
    }
    if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
      return new Error(`${at}: the bucket is in another region; correct the region in the registry`, { cause });
    }
    if (code && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET'].includes(code)) {
      return new Error(`${at}: cannot reach the service (${code}); check the endpoint in the registry and the network from this worker`, { cause });
    }
    if (name === 'TimeoutError' || name === 'RequestTimeout') {
      return new Error(`${at}: the service did not answer in time (${name}); check the endpoint in the registry and the network from this worker`, { cause });
    }
    if (name === 'QuotaExceeded' || name === 'EntityTooLarge' || name === 'InsufficientStorage' || status === 507) {
      return new Error(`${at}: the store is full (${name}); free space or raise its quota, then run the backup again`, { cause });
    }
    return new Error(`${at}: ${describe(err)}`, { cause });
  }
}

/** The S3 error code (the SDK's error name), or a Node error code for a failed connection. */
function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string };
  return e?.Code ?? e?.name ?? e?.code ?? 'Error';
}

function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  const name = e?.code ?? e?.name ?? 'Error';
  return e?.message && e.message !== name ? `${name}: ${e.message}` : name;
}

function isBroken(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return BROKEN.has(e?.code ?? '') || e?.message === 'aborted';
}

function isKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error ? reason : Object.assign(new Error('the upload was aborted'), { name: 'AbortError' });
}
