// The S3-compatible backup store against a STAND-IN for hosted S3 (AWS S3, R2, B2, MinIO, Supabase
// Storage): s3rver from npm, with the signature checks, checksum checks and multipart-upload listing it
// lacks added by test/helpers/s3-stand-in.ts. Streamed, hashed, atomic puts in several parts; a broken
// download resumed byte-exact, and refused when the object changed under it; errors a user can act on,
// without the secret; listings past one page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { BackupObjectMissing, type BackupStore } from '../server/storage/backup-store.ts';
import { S3BackupStore, type S3StoreConfig } from '../server/storage/s3-store.ts';
import { startS3StandIn, type S3StandIn } from './helpers/s3-stand-in.ts';

const MiB = 1024 * 1024;
let s3: S3StandIn;
/** A plain client on the stand-in: what is really in the bucket, seen without the store. */
let raw: S3Client;

before(async () => {
  s3 = await startS3StandIn();
  raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
});
after(async () => {
  raw?.destroy();
  await s3?.stop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Incomplete multipart uploads in the bucket, asked of the service and seen in its directory. */
async function uploadsLeft(): Promise<{ listed: string[]; onDisk: string[] }> {
  const res = await raw.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }));
  const dir = join(s3.directory, s3.bucket, '._S3rver_uploads');
  return { listed: (res.Uploads ?? []).map((u) => u.Key!), onDisk: existsSync(dir) ? readdirSync(dir) : [] };
}

/** What is stored under the bucket's directory for a key: s3rver writes <key>._S3rver_object. */
function onDisk(bucketKey: string): boolean {
  return existsSync(join(s3.directory, s3.bucket, `${bucketKey}._S3rver_object`));
}

/** A source that yields `chunks` MiB, then fails or calls `at` (which may abort). */
function source(chunks: number, then: { fail?: string; at?: number; call?: () => void }): Readable {
  return Readable.from((async function* () {
    for (let i = 0; i < chunks; i++) {
      if (then.at === i) then.call?.();
      yield randomBytes(MiB);
      await new Promise((r) => setImmediate(r));
    }
    if (then.fail) throw new Error(then.fail);
  })());
}

test('round trips of 0 bytes, a few bytes and more than 3 parts; SHA-256 and size as streamed; the service verifies every part', async () => {
  const store = new S3BackupStore({ ...s3.config(), prefix: 'odooops/', partSizeBytes: 5 * MiB, queueSize: 2 });
  const before = { ...s3.checksums };
  const sizes = [0, 1234, 17 * MiB + 3];
  for (const n of sizes) {
    const data = randomBytes(n);
    // Several chunks, so the store really streams and re-cuts them into parts.
    const chunks = n > MiB ? Array.from({ length: Math.ceil(n / (700 * 1024)) }, (_, i) => data.subarray(i * 700 * 1024, (i + 1) * 700 * 1024)) : [data];
    const part = await store.put(`p1/prod/b${n}/dump.pgc`, Readable.from(chunks));
    assert.equal(part.bytes, n);
    assert.equal(part.sha256, sha(data));
    assert.ok(onDisk(`odooops/p1/prod/b${n}/dump.pgc`), 'the object is under the configured prefix');
    const back = await readAll(await store.get(`p1/prod/b${n}/dump.pgc`));
    assert.equal(back.length, n);
    assert.equal(sha(back), sha(data));
    assert.equal(await store.exists(`p1/prod/b${n}/dump.pgc`), true);
  }
  // 1 + 1 + 4 parts (17 MiB in 5 MiB parts), each carrying a CRC32 the stand-in checked (the SDK's default
  // algorithm, computed natively: the dump's own SHA-256 is end to end, this checks each request).
  assert.equal(s3.checksums.crc32 - before.crc32, 6);
  assert.equal(s3.checksums.none - before.none, 0);
  assert.deepEqual(await uploadsLeft(), { listed: [], onDisk: [] });

  assert.equal(store.locationOf('p1/prod/b0/dump.pgc'), 's3:offsite/p1/prod/b0/dump.pgc');
  assert.equal(store.localPath('p1/prod/b0/dump.pgc'), undefined);
  assert.equal(store.contentKey('p1', 'a'.repeat(40)), `p1/files/aa/${'a'.repeat(40)}`);
  assert.equal(await store.exists('p1/prod/b0'), false, 'a prefix is not an object');
  assert.equal(await store.exists('p1/prod/b0/dump.pgc/x'), false);

  await assert.rejects(store.get('p1/prod/nope/dump.pgc'), (err: Error) => {
    assert.ok(err instanceof BackupObjectMissing);
    assert.equal(err.message, 'backup object p1/prod/nope/dump.pgc is missing from the backup store');
    return true;
  });
  assert.equal(await store.exists('p1/prod/nope/dump.pgc'), false);

  for (const key of ['../escape', '/abs/path', 'a/../../b', 'a//b', 'a/b c', '', 'a/./b']) {
    await assert.rejects(store.put(key, Readable.from(['x'])), /invalid backup key/, key);
    await assert.rejects(store.get(key), /invalid backup key/, key);
    assert.throws(() => store.locationOf(key), /invalid backup key/, key);
  }
  assert.throws(() => new S3BackupStore({ ...s3.config(), prefix: '../other' }), /backup store "offsite": the prefix "..\/other" is not a key prefix/);
  assert.throws(() => new S3BackupStore({ ...s3.config(), partSizeBytes: MiB }), /part size must be between 5 MiB/);

  // Checksums off (for services that refuse the headers): no checksum is sent, the round trip still holds.
  const plain = new S3BackupStore({ ...s3.config(), checksums: false, partSizeBytes: 5 * MiB });
  const was = { ...s3.checksums };
  const data = randomBytes(11 * MiB);
  assert.equal((await plain.put('p1/prod/plain/dump.pgc', Readable.from([data]))).sha256, sha(data));
  assert.equal(sha(await readAll(await plain.get('p1/prod/plain/dump.pgc'))), sha(data));
  assert.equal(s3.checksums.none - was.none, 3);
  assert.equal(s3.checksums.sha256 - was.sha256 + s3.checksums.crc32 - was.crc32, 0);
  await store.remove('p1');
  await plain.remove('p1');
});

test('a put whose source fails half-way, and one aborted by its signal, leave no object and no parts', async () => {
  const store = new S3BackupStore({ ...s3.config(), partSizeBytes: 5 * MiB });
  await assert.rejects(store.put('p2/prod/b1/dump.pgc', source(13, { fail: 'source broke' })), /source broke/);
  assert.equal(onDisk('p2/prod/b1/dump.pgc'), false);
  assert.equal(await store.exists('p2/prod/b1/dump.pgc'), false);
  assert.deepEqual(await uploadsLeft(), { listed: [], onDisk: [] });

  const ac = new AbortController();
  let partsBefore = 0;
  await assert.rejects(store.put('p2/prod/b2/dump.pgc', source(40, { at: 16, call: () => {
    // Parts have been uploaded by now: the abort must take them back.
    partsBefore = s3.checksums.crc32;
    ac.abort();
  } }), ac.signal), { name: 'AbortError' });
  assert.ok(partsBefore > 0);
  assert.equal(onDisk('p2/prod/b2/dump.pgc'), false);
  assert.deepEqual(await uploadsLeft(), { listed: [], onDisk: [] });
  // Already aborted: nothing is even started.
  await assert.rejects(store.put('p2/prod/b3/dump.pgc', Readable.from(['x']), ac.signal), { name: 'AbortError' });
  assert.deepEqual(await store.list('p2/prod'), []);
});

test('abortIncompleteUploads and remove take away what a killed writer left', async () => {
  const store = new S3BackupStore(s3.config());
  // A writer killed after its first part: the upload was never completed nor aborted.
  const killed = async (key: string) => {
    const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
    await raw.send(new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    return UploadId!;
  };
  await killed('p3/prod/b1/dump.pgc');
  await killed('other/prod/b1/dump.pgc');
  assert.equal((await uploadsLeft()).listed.length, 2);
  assert.equal(await store.abortIncompleteUploads('p3', new Date(Date.now() - 3_600_000)), 0, 'a recent upload may still be running');
  assert.equal(await store.abortIncompleteUploads('p3'), 1);
  assert.deepEqual((await uploadsLeft()).listed, ['other/prod/b1/dump.pgc'], 'another prefix is left alone');
  assert.equal(await store.abortIncompleteUploads('p3'), 0);

  // remove(prefix) of a whole backup takes its objects and its unfinished upload.
  await store.put('p3/prod/b2/manifest.json', Readable.from(['{}']));
  await killed('p3/prod/b2/dump.pgc');
  await store.remove('p3/prod/b2');
  assert.deepEqual(await store.list('p3/prod'), []);
  assert.deepEqual((await uploadsLeft()).listed, ['other/prod/b1/dump.pgc']);
  assert.equal(await store.abortIncompleteUploads(''), 1);
  assert.deepEqual(await uploadsLeft(), { listed: [], onDisk: [] });
});

/**
 * A TCP proxy in front of the stand-in that breaks connections: `plan(n)` says, for the n-th connection,
 * after how many bytes in which direction to cut it, and what to do first.
 */
async function cuttingProxy(target: string, plan: (n: number) => { after: number; direction: 'down' | 'up'; first?: () => Promise<void> } | undefined) {
  const port = Number(new URL(target).port);
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const cut = plan(connections++);
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let passed = 0;
    let cutting = false;
    const relay = (from: Socket, to: Socket, direction: 'down' | 'up') => {
      from.on('data', (chunk: Buffer) => {
        if (cutting) return;
        if (!cut || cut.direction !== direction || passed + chunk.length <= cut.after) {
          if (cut?.direction === direction) passed += chunk.length;
          to.write(chunk);
          return;
        }
        cutting = true;
        to.write(chunk.subarray(0, cut.after - passed));
        from.pause();
        void (cut.first?.() ?? Promise.resolve()).then(() => {
          client.resetAndDestroy();
          upstream.destroy();
        });
      });
    };
    relay(upstream, client, 'down');
    relay(client, upstream, 'up');
    for (const s of [client, upstream]) s.on('error', () => { client.destroy(); upstream.destroy(); }).on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    get connections() { return connections; },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

test('a download broken mid-way resumes from the byte reached; a changed object is an error, not a splice', async () => {
  const store = new S3BackupStore(s3.config());
  const data = randomBytes(6 * MiB + 11);
  await store.put('p4/prod/b1/dump.pgc', Readable.from([data]));

  // The first connection (the GET) is cut after 2 MiB of the response.
  const proxy = await cuttingProxy(s3.endpoint, (n) => (n === 0 ? { after: 2 * MiB, direction: 'down' } : undefined));
  try {
    const via = new S3BackupStore({ ...s3.config(), endpoint: proxy.endpoint });
    const back = await readAll(await via.get('p4/prod/b1/dump.pgc'));
    assert.equal(back.length, data.length);
    assert.ok(back.equals(data), 'the resumed bytes are the object\'s bytes');
    assert.equal(proxy.connections, 2, 'the download was broken once and resumed on a second connection');
  } finally {
    await proxy.close();
  }

  // The object is written again while the first connection hangs, then the connection breaks.
  const other = randomBytes(data.length);
  const changing = await cuttingProxy(s3.endpoint, (n) => (n === 0 ? {
    after: 2 * MiB, direction: 'down', first: async () => { await store.put('p4/prod/b1/dump.pgc', Readable.from([other])); },
  } : undefined));
  try {
    const via = new S3BackupStore({ ...s3.config(), endpoint: changing.endpoint });
    await assert.rejects(readAll(await via.get('p4/prod/b1/dump.pgc')), /backup store "offsite": p4\/prod\/b1\/dump.pgc changed while it was being downloaded/);
  } finally {
    await changing.close();
  }

  // A connection that keeps breaking: a few resumes, then an error that says what to check.
  const flaky = await cuttingProxy(s3.endpoint, () => ({ after: 512 * 1024, direction: 'down' }));
  try {
    const via = new S3BackupStore({ ...s3.config(), endpoint: flaky.endpoint });
    await assert.rejects(readAll(await via.get('p4/prod/b1/dump.pgc')), /the download of p4\/prod\/b1\/dump.pgc broke 4 times; check the network/);
    assert.equal(flaky.connections, 4);
  } finally {
    await flaky.close();
  }
  await store.remove('p4');
});

test('a part whose connection breaks is sent again by the retry strategy; the object is whole', async () => {
  const data = randomBytes(12 * MiB);
  // The first connection that carries 2 MiB up (a part) is cut there, once.
  let cut = false;
  const proxy = await cuttingProxy(s3.endpoint, () => (cut ? undefined : { after: 2 * MiB, direction: 'up', first: async () => { cut = true; } }));
  try {
    const via = new S3BackupStore({ ...s3.config(), endpoint: proxy.endpoint, partSizeBytes: 5 * MiB, queueSize: 1 });
    const part = await via.put('p5/prod/b1/dump.pgc', Readable.from([data]));
    assert.equal(part.sha256, sha(data));
    assert.ok(cut, 'a part upload was broken');
    assert.ok(proxy.connections >= 2, `a new connection was opened for the retried part (${proxy.connections})`);
  } finally {
    await proxy.close();
  }
  const store = new S3BackupStore(s3.config());
  assert.ok((await readAll(await store.get('p5/prod/b1/dump.pgc'))).equals(data));
  assert.deepEqual(await uploadsLeft(), { listed: [], onDisk: [] });
  await store.remove('p5');
});

test('wrong credentials, a missing bucket, an unreachable endpoint: errors naming the store and what to check, never the secret', async () => {
  const wrongSecret = `${s3.secretAccessKey.slice(0, -4)}XXXX`;
  const cases: [string, S3StoreConfig, RegExp][] = [
    ['wrong secret', { ...s3.config(), secretAccessKey: wrongSecret }, /backup store "offsite" \(.*\): the service refused the credentials \(SignatureDoesNotMatch\); check the access key id and the secret key/],
    ['unknown key id', { ...s3.config(), accessKeyId: 'AKNOBODY' }, /backup store "offsite" \(.*\): the service refused the credentials \(InvalidAccessKeyId\)/],
    ['no such bucket', { ...s3.config(), bucket: 'not-there' }, /backup store "offsite" \(.*\): the bucket does not exist; create it or correct the bucket/],
  ];
  for (const [what, config, message] of cases) {
    const store = new S3BackupStore(config);
    const ops: (() => Promise<unknown>)[] = [() => store.put('p6/b/dump.pgc', Readable.from([randomBytes(1000)])), () => store.get('p6/b/dump.pgc'), () => store.list('p6'), () => store.remove('p6/b')];
    // A missing bucket is not a missing object, even to a HEAD (which has no body to say so).
    if (what === 'no such bucket') ops.push(() => store.exists('p6/b/dump.pgc'));
    for (const op of ops) {
      await assert.rejects(op(), (err: Error) => {
        assert.match(err.message, message, what);
        const all = inspect(err, { depth: 10 });
        for (const secret of [wrongSecret, s3.secretAccessKey]) assert.ok(!all.includes(secret), `${what}: no secret in ${all}`);
        assert.ok(!all.includes(s3.endpoint) && !err.message.includes(config.bucket), `${what}: the message names the store, not its endpoint or bucket`);
        return true;
      });
    }
  }
  // The service refusing a put does not leave its source waiting for a reader (a pg_dump would hang).
  const waiting = source(40, {});
  await assert.rejects(new S3BackupStore({ ...s3.config(), secretAccessKey: wrongSecret }).put('p6/b/dump.pgc', waiting), /refused the credentials/);
  assert.ok(waiting.destroyed, 'the source is closed');
  // A HEAD has no error body: a refused one is still a message about the credentials.
  await assert.rejects(new S3BackupStore({ ...s3.config(), secretAccessKey: wrongSecret }).exists('p6/b/dump.pgc'), /backup store "offsite" .*refused/);

  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as { port: number }).port;
  await new Promise((r) => closed.close(r));
  const unreachable = new S3BackupStore({ ...s3.config(), endpoint: `http://127.0.0.1:${port}` });
  await assert.rejects(unreachable.list('p6'), /backup store "offsite" \(listing p6\): cannot reach the service \(ECONNREFUSED\); check the endpoint in the registry and the network/);
});

test('list, walk, usage, delete and remove past one page (more than 1000 objects)', async () => {
  const store = new S3BackupStore(s3.config());
  const keys = [
    ...Array.from({ length: 1040 }, (_, i) => `p7/files/aa/${String(i).padStart(40, '0')}`),
    ...Array.from({ length: 30 }, (_, i) => `p7/files/b${i % 3}/${String(i).padStart(40, '0')}`),
    'p7/prod/b1/manifest.json',
  ];
  for (let i = 0; i < keys.length; i += 32) {
    await Promise.all(keys.slice(i, i + 32).map((k) => raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: k, Body: k }))));
  }
  assert.deepEqual(await store.list('p7'), ['files', 'prod']);
  assert.deepEqual(await store.list('p7/files'), ['aa', 'b0', 'b1', 'b2']);
  assert.equal((await store.list('p7/files/aa')).length, 1040);
  const walked = [];
  for await (const o of store.walk('p7')) walked.push(o);
  assert.deepEqual(walked.map((o) => o.key).sort(), [...keys].sort());
  assert.ok(walked.every((o) => o.bytes === o.key.length && o.modified instanceof Date && Date.now() - o.modified.getTime() < 600_000));
  assert.equal(await store.usage('p7'), keys.reduce((n, k) => n + k.length, 0));
  assert.equal(await store.usage('p7/prod'), 'p7/prod/b1/manifest.json'.length);

  await store.delete(keys[0]!);
  await store.delete(keys[0]!); // gone already: not an error
  assert.equal(await store.exists(keys[0]!), false);
  assert.equal((await store.list('p7/files/aa')).length, 1039);

  await store.remove('p7/files');
  assert.deepEqual(await store.list('p7'), ['prod']);
  assert.deepEqual(await store.list('p7/files'), []);
  await store.remove('p7');
  let left = 0;
  for await (const _ of store.walk('p7')) left++;
  assert.equal(left, 0);
});

const encryption = new URL('../server/storage/encryption.ts', import.meta.url);
test('round trips through EncryptedStore over the S3 store', { skip: !existsSync(encryption) && 'server/storage/encryption.ts is not here yet' }, async () => {
  const { EncryptedStore, parseBackupKey } = await import(encryption.href);
  const inner = new S3BackupStore({ ...s3.config(), partSizeBytes: 5 * MiB });
  const store: BackupStore = new EncryptedStore(inner, parseBackupKey(randomBytes(32).toString('base64'), 'the test key'));
  for (const n of [0, 1234, 17 * MiB + 3]) {
    const data = randomBytes(n);
    const part = await store.put(`p8/prod/b${n}/dump.pgc`, Readable.from([data]));
    assert.equal(part.sha256, sha(data));
    assert.ok(sha(await readAll(await store.get(`p8/prod/b${n}/dump.pgc`))) === sha(data));
    // What the service holds is not the plaintext.
    const stored = await readAll(await inner.get(`p8/prod/b${n}/dump.pgc`));
    if (n > 0) assert.ok(!stored.includes(data.subarray(0, Math.min(n, 64))));
  }
  await inner.remove('p8');
});
