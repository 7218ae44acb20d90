// A STAND-IN for hosted S3-compatible storage (AWS S3, Cloudflare R2, Backblaze B2, MinIO, Supabase
// Storage): s3rver from npm, on a free port, keeping its objects in a temporary directory.
//
// s3rver lacks parts of S3 the backup store relies on, so this helper adds them in front of it, the way
// the hosted services behave:
// - it accepts any SigV4 signature (it does not check them): here every request must be signed with the
//   stand-in's secret, or it is refused with SignatureDoesNotMatch / InvalidAccessKeyId;
// - it has no ListMultipartUploads and no AbortMultipartUpload: both are implemented over its own upload
//   directory (<directory>/<bucket>/._S3rver_uploads/<uploadId>/{key,metadata,<part>});
// - it ignores x-amz-checksum-* and x-amz-content-sha256: bodies of PutObject/UploadPart are checked
//   against them (BadDigest / XAmzContentSHA256Mismatch) and the checksum is echoed as S3 does;
// - its ListObjectsV2 cannot paginate on Node >= 17 (its continuation token uses a cipher OpenSSL 3
//   no longer has: a 500 on page 2), and its delimited listing only finds common prefixes that hold an
//   object directly (p/a/x is listed under "p/" only if some p/a/<key> exists): ListObjectsV2 is
//   answered here, over s3rver's files;
// - its DeleteObjects deletes the keys concurrently and races on removing the emptied directories (a
//   500 when two keys of one directory go together): it is answered here, one key after the other;
// - it would store an aws-chunked (trailer checksum) body as it came, framing and all: such a request
//   is refused, so a test finds out rather than getting corrupted bytes back.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { S3StoreConfig } from '../../server/storage/s3-store.ts';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

export interface S3StandIn {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where s3rver keeps the bucket's objects and uploads. */
  directory: string;
  /** Bodies of PutObject/UploadPart by the checksum they carried (each one verified). */
  checksums: { sha256: number; crc32: number; none: number };
  stop(): Promise<void>;
  config(name?: string): S3StoreConfig;
}

export async function startS3StandIn(opts: { bucket?: string } = {}): Promise<S3StandIn> {
  const bucket = opts.bucket ?? 'odooops-backups';
  const region = 'us-east-1';
  const directory = mkdtempSync(join(tmpdir(), 'odooops-s3-'));
  const accessKeyId = `AKSTANDIN${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString('base64url');
  DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  const checksums = { sha256: 0, crc32: 0, none: 0 };
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, vhostBuckets: false, configureBuckets: [{ name: bucket }] });
  const uploadsDir = (b: string) => join(directory, b, '._S3rver_uploads');
  // s3rver's own failures (500s) are otherwise silent here.
  if (process.env.S3_STAND_IN_DEBUG) server.on('error', (err: Error) => console.error('s3 stand-in:', err));

  // Koa runs middleware in array order: these go before s3rver's own router.
  server.middleware.unshift(async (ctx: KoaContext, next: () => Promise<void>) => {
    const err = verifySignature(ctx.req.method ?? 'GET', ctx.req.url ?? '/', ctx.req.headers, region, (id) => (id === accessKeyId ? secretAccessKey : undefined));
    if (err) return fail(ctx, err[0], err[1], err[2]);
    const [, b, ...rest] = ctx.path.split('/');
    const key = rest.join('/');
    const q = ctx.query;
    if (ctx.method === 'GET' && b && !key && 'uploads' in q) return listUploads(ctx, uploadsDir(b), b, q);
    if (ctx.method === 'POST' && b && !key && 'delete' in q) return deleteObjects(ctx, server.store, join(directory, b), b);
    if (ctx.method === 'GET' && b && !key && q['list-type'] === '2') return listObjectsV2(ctx, join(directory, b), b, q);
    if (ctx.method === 'DELETE' && b && key && typeof q.uploadId === 'string') return abortUpload(ctx, uploadsDir(b), key, q.uploadId);
    if (ctx.method === 'PUT' && b && key && !ctx.headers['x-amz-copy-source'] && !('tagging' in q) && !('acl' in q)) {
      const bad = await checkBody(ctx, checksums);
      if (bad) return fail(ctx, bad[0], bad[1], bad[2]);
    }
    await next();
  });

  const address: AddressInfo = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    region,
    bucket,
    accessKeyId,
    secretAccessKey,
    directory,
    checksums,
    async stop() {
      await server.close().catch(() => {});
      DUMMY_ACCOUNT.revokeAccessKey(accessKeyId);
      rmSync(directory, { recursive: true, force: true });
    },
    config(name = 'offsite'): S3StoreConfig {
      return { name, endpoint, region, bucket, forcePathStyle: true, accessKeyId, secretAccessKey };
    },
  };
}

type KoaContext = {
  req: import('node:http').IncomingMessage;
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
};

function fail(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.set('x-amz-error-code', code);
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xml(message)}</Message></Error>`;
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** RFC 3986 encoding, as SigV4's canonical request wants it. */
function enc(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** Checks an AWS SigV4 Authorization header as S3 does; returns [status, code, message] when refused. */
export function verifySignature(
  method: string, url: string, headers: Record<string, string | string[] | undefined>, region: string,
  secretOf: (accessKeyId: string) => string | undefined,
): [number, string, string] | undefined {
  const auth = headers.authorization;
  if (typeof auth !== 'string') return [403, 'AccessDenied', 'Access Denied (the request is not signed)'];
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return [400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed'];
  const [, keyId, date, scopeRegion, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  const secret = secretOf(keyId);
  if (secret === undefined) return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
  if (scopeRegion !== region) return [400, 'AuthorizationHeaderMalformed', `the region '${scopeRegion}' is wrong; expecting '${region}'`];
  const amzDate = headers['x-amz-date'];
  const payload = headers['x-amz-content-sha256'];
  if (typeof amzDate !== 'string' || !amzDate.startsWith(date) || typeof payload !== 'string') return [403, 'AccessDenied', 'x-amz-date and x-amz-content-sha256 are required'];
  const [path, query = ''] = url.split('?', 2) as [string, string?];
  const canonicalQuery = query
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const i = p.indexOf('=');
      const [k, v] = i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
      return [enc(decodeURIComponent(k)), enc(decodeURIComponent(v))] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return [403, 'AccessDenied', 'the host header must be signed'];
  const canonicalHeaders = names.map((n) => {
    const v = headers[n];
    return `${n}:${(Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ')}\n`;
  }).join('');
  const canonical = [method, path, canonicalQuery, canonicalHeaders, signedHeaders, payload].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign).digest('hex');
  if (expected !== signature) return [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'];
  return undefined;
}

/** Reads a PutObject/UploadPart body, checks it against the checksums it was sent with, and hands it on. */
async function checkBody(ctx: KoaContext, seen: S3StandIn['checksums']): Promise<[number, string, string] | undefined> {
  const h = ctx.headers;
  const payload = String(h['x-amz-content-sha256'] ?? '');
  if (String(h['content-encoding'] ?? '').includes('aws-chunked') || payload.startsWith('STREAMING-')) {
    return [501, 'NotImplemented', 'the stand-in does not decode aws-chunked bodies (trailer checksums)'];
  }
  const chunks: Buffer[] = [];
  for await (const c of ctx.req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  if (/^[0-9a-f]{64}$/.test(payload) && createHash('sha256').update(body).digest('hex') !== payload) {
    return [400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed."];
  }
  const sha256 = h['x-amz-checksum-sha256'];
  const crc = h['x-amz-checksum-crc32'];
  if (typeof sha256 === 'string') {
    if (createHash('sha256').update(body).digest('base64') !== sha256) return [400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.'];
    seen.sha256++;
    ctx.set('x-amz-checksum-sha256', sha256);
  } else if (typeof crc === 'string') {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(crc32(body));
    if (b.toString('base64') !== crc) return [400, 'BadDigest', 'The CRC32 you specified did not match the calculated checksum.'];
    seen.crc32++;
    ctx.set('x-amz-checksum-crc32', crc);
  } else {
    seen.none++;
  }
  // s3rver reads the body from ctx.req: give it the bytes already read.
  const replay = Readable.from(body.length ? [body] : []) as unknown as import('node:http').IncomingMessage;
  (replay as unknown as { headers: unknown }).headers = ctx.req.headers;
  ctx.req = replay;
  return undefined;
}

async function listUploads(ctx: KoaContext, dir: string, bucket: string, q: KoaContext['query']): Promise<void> {
  if (!existsSync(join(dir, '..'))) return fail(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  const prefix = typeof q.prefix === 'string' ? q.prefix : '';
  const keyMarker = typeof q['key-marker'] === 'string' ? q['key-marker'] : '';
  const idMarker = typeof q['upload-id-marker'] === 'string' ? q['upload-id-marker'] : '';
  const max = Math.min(1000, Number(q['max-uploads'] ?? 1000) || 1000);
  const ids = await readdir(dir).catch(() => [] as string[]);
  const uploads: { key: string; id: string; initiated: Date }[] = [];
  for (const id of ids) {
    const key = await readFile(join(dir, id, 'key'), 'utf8').catch(() => undefined);
    if (key === undefined || !key.startsWith(prefix)) continue;
    uploads.push({ key, id, initiated: (await stat(join(dir, id, 'key'))).mtime });
  }
  uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
  const after = uploads.filter((u) => !keyMarker || u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.id > idMarker));
  const page = after.slice(0, max);
  const truncated = after.length > max;
  const last = page[page.length - 1];
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Bucket>${xml(bucket)}</Bucket><KeyMarker>${xml(keyMarker)}</KeyMarker><UploadIdMarker>${xml(idMarker)}</UploadIdMarker>` +
    (truncated && last ? `<NextKeyMarker>${xml(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.id}</NextUploadIdMarker>` : '') +
    `<Prefix>${xml(prefix)}</Prefix><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>` +
    page.map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`).join('') +
    `</ListMultipartUploadsResult>`;
}

async function abortUpload(ctx: KoaContext, dir: string, key: string, uploadId: string): Promise<void> {
  const stored = /^[0-9a-f]+$/.test(uploadId) ? await readFile(join(dir, uploadId, 'key'), 'utf8').catch(() => undefined) : undefined;
  if (stored !== decodeURIComponent(key)) return fail(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
  await rm(join(dir, uploadId), { recursive: true, force: true });
  ctx.status = 204;
  ctx.body = '';
}

/** ListObjectsV2 (delimited or not), paginated, over s3rver's files (<key>._S3rver_object). */
async function listObjectsV2(ctx: KoaContext, bucketDir: string, bucket: string, q: KoaContext['query']): Promise<void> {
  if (!existsSync(bucketDir)) return fail(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const prefix = str(q.prefix);
  const delimiter = str(q.delimiter);
  const max = Math.min(1000, q['max-keys'] === undefined ? 1000 : Number(q['max-keys']));
  const token = str(q['continuation-token']);
  const after = token ? Buffer.from(token, 'base64url').toString() : str(q['start-after']);
  const suffix = '._S3rver_object';
  const files = await readdir(bucketDir, { recursive: true, withFileTypes: true }).catch(() => []);
  const keys = files
    .filter((f) => f.isFile() && f.name.endsWith(suffix))
    .map((f) => join(f.parentPath, f.name).slice(bucketDir.length + 1, -suffix.length))
    .filter((k) => k.startsWith(prefix) && !k.startsWith('._S3rver_uploads/'))
    .sort();
  const entries: ({ key: string } | { prefix: string })[] = [];
  for (const k of keys) {
    const i = delimiter ? k.indexOf(delimiter, prefix.length) : -1;
    const name = i < 0 ? k : k.slice(0, i + delimiter.length);
    if (name <= after) continue;
    const last = entries[entries.length - 1];
    if (i >= 0) {
      if (!(last && 'prefix' in last && last.prefix === name)) entries.push({ prefix: name });
    } else entries.push({ key: k });
  }
  const page = entries.slice(0, max);
  const truncated = entries.length > max;
  const lastName = (e: { key: string } | { prefix: string }) => ('key' in e ? e.key : e.prefix);
  const contents = await Promise.all(page.filter((e): e is { key: string } => 'key' in e).map(async ({ key }) => {
    const file = join(bucketDir, `${key}${suffix}`);
    const [s, md5] = await Promise.all([stat(file), readFile(`${file}.md5`, 'utf8').catch(() => '')]);
    return `<Contents><Key>${xml(key)}</Key><LastModified>${s.mtime.toISOString()}</LastModified><ETag>"${md5}"</ETag><Size>${s.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
  }));
  const prefixes = page.filter((e): e is { prefix: string } => 'prefix' in e).map((e) => `<CommonPrefixes><Prefix>${xml(e.prefix)}</Prefix></CommonPrefixes>`);
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    `<Name>${xml(bucket)}</Name><Prefix>${xml(prefix)}</Prefix>${delimiter ? `<Delimiter>${xml(delimiter)}</Delimiter>` : ''}<MaxKeys>${max}</MaxKeys>` +
    `<KeyCount>${page.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>` +
    (token ? `<ContinuationToken>${xml(token)}</ContinuationToken>` : '') +
    (truncated ? `<NextContinuationToken>${Buffer.from(lastName(page[page.length - 1]!)).toString('base64url')}</NextContinuationToken>` : '') +
    contents.join('') + prefixes.join('') + `</ListBucketResult>`;
}

/** DeleteObjects, one key after the other (s3rver's concurrent version fails on shared directories). */
async function deleteObjects(ctx: KoaContext, store: { existsObject(b: string, k: string): Promise<boolean>; deleteObject(b: string, k: string): Promise<void> }, bucketDir: string, bucket: string): Promise<void> {
  if (!existsSync(bucketDir)) return fail(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  const chunks: Buffer[] = [];
  for await (const c of ctx.req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  const unxml = (t: string) => t.replace(/&(lt|gt|amp|quot|apos|#(\d+));/g, (_, e: string, n?: string) => (n ? String.fromCharCode(Number(n)) : ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e]!));
  const keys = [...body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => unxml(m[1]!));
  if (!body.includes('<Delete') || keys.length === 0 || keys.length > 1000) return fail(ctx, 400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
  const quiet = /<Quiet>\s*true\s*<\/Quiet>/.test(body);
  for (const k of keys) if (await store.existsObject(bucket, k)) await store.deleteObject(bucket, k);
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
    (quiet ? '' : keys.map((k) => `<Deleted><Key>${xml(k)}</Key></Deleted>`).join('')) + `</DeleteResult>`;
}
