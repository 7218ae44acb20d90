// Encryption at rest (server/storage/encryption.ts): the chunked AES-256-GCM format round-trips every
// size around a chunk boundary, and every way of tampering with an object an attacker or a bad disk has
// (a flipped byte in the header, a chunk or a tag; chunks dropped, swapped, cut off or appended; another
// key; a plain object) is refused with the right reason, without a byte of unverified plaintext reaching
// the reader. Real streams, real files through LocalBackupStore in a temp dir.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupObjectMissing, LocalBackupStore } from '../server/storage/backup-store.ts';
import { BackupDecryptError, EncryptedStore, decryptStream, encryptStream, parseBackupKey, type BackupKey } from '../server/storage/encryption.ts';
import { InfraError } from '../server/infra/registry.ts';

const KiB = 1024;
const CHUNK = 64 * KiB;
const TAG = 16;
const SEALED = CHUNK + TAG;
const HEADER = 12 + 8 + 32;

let scratch: string;
before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-crypto-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

const newKey = (): BackupKey => parseBackupKey(randomBytes(32).toString('base64'), 'the test key');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A source that hands the data out in uneven pieces, so no piece lines up with a chunk. */
function uneven(data: Buffer): Readable {
  const sizes = [1, 1000, 70_000, 13, 65_536, 4096];
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - at);
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces, { objectMode: false });
}

async function collect(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Encrypted as EncryptedStore writes the object p/e/b/dump.pgc (its name is part of its data key). */
async function encrypt(key: BackupKey, plain: Buffer, name = 'p/e/b/dump.pgc'): Promise<Buffer> {
  return collect(uneven(plain).pipe(encryptStream(key, name)));
}

/** Decrypts, keeping what was emitted before the stream failed. */
async function decrypt(key: BackupKey, sealed: Buffer, label = 'p/e/b/dump.pgc'): Promise<{ out: Buffer; err?: BackupDecryptError }> {
  const out: Buffer[] = [];
  try {
    await pipeline(uneven(sealed), decryptStream(key, label, label), new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
    return { out: Buffer.concat(out) };
  } catch (err) {
    assert.ok(err instanceof BackupDecryptError, `a BackupDecryptError, not ${String(err)}`);
    return { out: Buffer.concat(out), err };
  }
}

/** What a reader of an EncryptedStore gets: either get() rejects, or the stream fails part-way. */
async function readThrough(store: EncryptedStore, key: string): Promise<{ stage: 'get' | 'stream' | 'ok'; out: Buffer; err?: BackupDecryptError }> {
  let stream: Readable;
  try {
    stream = await store.get(key);
  } catch (err) {
    assert.ok(err instanceof BackupDecryptError, `a BackupDecryptError, not ${String(err)}`);
    return { stage: 'get', out: Buffer.alloc(0), err };
  }
  const out: Buffer[] = [];
  try {
    for await (const c of stream) out.push(c as Buffer);
    return { stage: 'ok', out: Buffer.concat(out) };
  } catch (err) {
    assert.ok(err instanceof BackupDecryptError, `a BackupDecryptError, not ${String(err)}`);
    return { stage: 'stream', out: Buffer.concat(out), err };
  }
}

function stores(name = 'offsite', key = newKey()) {
  const root = mkdtempSync(join(scratch, 'store-'));
  const inner = new LocalBackupStore(root, name);
  return { root, inner, key, store: new EncryptedStore(inner, key) };
}

const flip = (b: Buffer, at: number) => {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x01;
  return c;
};

test('round trip of every size around a chunk boundary, through the store and as raw streams', async () => {
  const { root, inner, store, key: backupKey } = stores();
  for (const n of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * 1024 * KiB]) {
    const plain = randomBytes(n);
    const key = `p/e/b${n}/dump.pgc`;
    const part = await store.put(key, uneven(plain));
    // What manifests record and verify compares: the plaintext's size and hash.
    assert.deepEqual(part, { bytes: n, sha256: sha256(plain) }, `size ${n}`);
    const onDisk = readFileSync(join(root, key));
    const chunks = Math.max(1, Math.ceil(n / CHUNK));
    assert.equal(onDisk.length, HEADER + n + chunks * TAG, `size ${n}: header, the data and one tag per chunk`);
    assert.ok(onDisk.subarray(0, 12).equals(Buffer.from('ODOOOPS-ENC\x01', 'latin1')));
    assert.ok((await collect(await inner.get(key))).equals(onDisk));
    assert.ok((await collect(await store.get(key))).equals(plain), `size ${n} through the store`);
    const raw = await decrypt(backupKey, onDisk, key);
    assert.equal(raw.err, undefined);
    assert.ok(raw.out.equals(plain), `size ${n} as a raw stream`);
    // The file is ciphertext: callers must stream it through get().
    assert.equal(store.localPath(key), undefined);
    assert.ok(inner.localPath(key));
  }
});

test('the ciphertext does not contain the plaintext, and two encryptions of it differ', async () => {
  const key = newKey();
  const marker = 'CUSTOMER-IBAN-DE89370400440532013000';
  const plain = Buffer.from(marker.repeat(5000));
  const a = await encrypt(key, plain);
  const b = await encrypt(key, plain);
  assert.equal(a.includes(marker), false);
  assert.equal(a.includes(plain.subarray(0, 16)), false);
  assert.equal(a.length, b.length);
  assert.equal(a.equals(b), false);
  // Different salts, so different data keys: not even the first chunk's ciphertext is shared.
  assert.equal(a.subarray(20, HEADER).equals(b.subarray(20, HEADER)), false);
  assert.equal(a.subarray(HEADER, HEADER + 64).equals(b.subarray(HEADER, HEADER + 64)), false);
  // Same key, so the same key id in both headers.
  assert.ok(a.subarray(12, 20).equals(b.subarray(12, 20)));
  assert.equal(a.subarray(12, 20).toString('hex'), key.id);
  assert.ok((await decrypt(key, a)).out.equals(plain));
  assert.ok((await decrypt(key, b)).out.equals(plain));
});

test('a writer that reuses its buffer once a write completed still gets what it wrote encrypted', async () => {
  const key = newKey();
  const enc = encryptStream(key, 'p/e/b/dump.pgc');
  const sealed = collect(enc);
  const written: Buffer[] = [];
  // Small writes (held until a chunk fills) and big ones (sealed straight from the input, the tail held).
  for (const size of [1000, 100 * KiB]) {
    const buf = Buffer.alloc(size);
    for (let i = 0; i < 150; i++) {
      buf.fill(i);
      written.push(Buffer.from(buf));
      await new Promise<void>((resolve, reject) => enc.write(buf, (err) => (err ? reject(err) : resolve())));
    }
  }
  enc.end();
  const back = await decrypt(key, await sealed);
  assert.equal(back.err, undefined);
  assert.ok(back.out.equals(Buffer.concat(written)));
});

test('a flipped byte in the header, a chunk or a tag: the right error, no plaintext past the damage', async () => {
  const { root, store, key } = stores();
  const plain = randomBytes(5 * CHUNK + 1234);
  await store.put('p/e/b/dump.pgc', uneven(plain));
  const file = join(root, 'p/e/b/dump.pgc');
  const good = readFileSync(file);
  const chunkAt = (i: number) => HEADER + i * SEALED;
  const cases: { what: string; at: number; reason: string; stage: 'get' | 'stream'; verifiedChunks: number; says: RegExp }[] = [
    { what: 'the format marker', at: 3, reason: 'damaged', stage: 'get', verifiedChunks: 0, says: /format marker/ },
    { what: 'the version byte', at: 11, reason: 'damaged', stage: 'get', verifiedChunks: 0, says: /format version 0, which this OdooOps does not read/ },
    // With the right key at hand, a damaged key id is told from another key by the first chunk.
    { what: 'the key id', at: 15, reason: 'damaged', stage: 'get', verifiedChunks: 0, says: /header names key/ },
    { what: 'the salt', at: 40, reason: 'damaged', stage: 'get', verifiedChunks: 0, says: /chunk 1 / },
    { what: 'the first chunk', at: chunkAt(0) + 100, reason: 'damaged', stage: 'get', verifiedChunks: 0, says: /chunk 1 / },
    { what: 'the third chunk', at: chunkAt(2) + 5000, reason: 'damaged', stage: 'stream', verifiedChunks: 2, says: /chunk 3 / },
    { what: "the second chunk's tag", at: chunkAt(1) + CHUNK + 7, reason: 'damaged', stage: 'stream', verifiedChunks: 1, says: /chunk 2 / },
    { what: 'the last chunk', at: good.length - TAG - 1, reason: 'damaged', stage: 'stream', verifiedChunks: 5, says: /chunk 6 / },
    { what: "the last chunk's tag", at: good.length - 1, reason: 'damaged', stage: 'stream', verifiedChunks: 5, says: /chunk 6 / },
  ];
  for (const c of cases) {
    writeFileSync(file, flip(good, c.at));
    const got = await readThrough(store, 'p/e/b/dump.pgc');
    assert.equal(got.err?.reason, c.reason, `${c.what}: ${got.err?.message}`);
    assert.equal(got.stage, c.stage, c.what);
    assert.match(got.err!.message, c.says, c.what);
    assert.match(got.err!.message, /backup object p\/e\/b\/dump\.pgc is damaged/, c.what);
    assert.equal(got.err!.object, 'p/e/b/dump.pgc');
    // Only chunks whose tag verified were handed out, and they are the plaintext's.
    assert.equal(got.out.length, c.verifiedChunks * CHUNK, c.what);
    assert.ok(got.out.equals(plain.subarray(0, got.out.length)), c.what);
    // The raw stream refuses it the same way.
    const raw = await decrypt(key, flip(good, c.at));
    assert.equal(raw.err?.reason, c.reason, c.what);
    assert.equal(raw.out.length, c.verifiedChunks * CHUNK, c.what);
  }
  writeFileSync(file, good);
  assert.ok((await collect(await store.get('p/e/b/dump.pgc'))).equals(plain), 'the undamaged object still reads');
});

test('dropped, swapped, cut or appended chunks are refused', async () => {
  const key = newKey();
  const plain = randomBytes(4 * CHUNK + 999);
  const sealed = await encrypt(key, plain);
  const chunk = (i: number) => sealed.subarray(HEADER + i * SEALED, Math.min(sealed.length, HEADER + (i + 1) * SEALED));
  const header = sealed.subarray(0, HEADER);
  assert.equal(chunk(4).length, 999 + TAG);

  // Cut at a chunk boundary: without its last chunk the object ends on a chunk sealed as "not last".
  let r = await decrypt(key, Buffer.concat([header, chunk(0), chunk(1), chunk(2), chunk(3)]));
  assert.equal(r.err?.reason, 'truncated', r.err?.message);
  assert.match(r.err!.message, /is truncated: it ends after chunk 4 without its last chunk/);
  assert.ok(r.out.equals(plain.subarray(0, r.out.length)));
  assert.ok(r.out.length <= 4 * CHUNK);
  r = await decrypt(key, Buffer.concat([header, chunk(0)]));
  assert.equal(r.err?.reason, 'truncated');
  r = await decrypt(key, Buffer.from(header));
  assert.equal(r.err?.reason, 'truncated');
  assert.match(r.err!.message, /a header and no chunk/);
  r = await decrypt(key, sealed.subarray(0, 30));
  assert.equal(r.err?.reason, 'truncated');
  assert.equal(r.out.length, 0);
  r = await decrypt(key, sealed.subarray(0, HEADER + 2 * SEALED + 5));
  assert.equal(r.err?.reason, 'truncated');
  assert.equal(r.out.length, 2 * CHUNK);
  // Cut inside a chunk: the rest cannot be told from a damaged last chunk, and is refused as such.
  r = await decrypt(key, sealed.subarray(0, HEADER + 2 * SEALED + 5000));
  assert.equal(r.err?.reason, 'damaged');
  assert.equal(r.out.length, 2 * CHUNK);

  // Two chunks swapped, a middle one dropped, one repeated: the counter in the nonce tells.
  for (const [what, parts, verified] of [
    ['swapped', [chunk(0), chunk(2), chunk(1), chunk(3), chunk(4)], 1],
    ['dropped', [chunk(0), chunk(1), chunk(3), chunk(4)], 2],
    ['repeated', [chunk(0), chunk(0), chunk(1), chunk(2), chunk(3), chunk(4)], 1],
    ['the last chunk moved up', [chunk(0), chunk(4)], 1],
  ] as const) {
    r = await decrypt(key, Buffer.concat([header, ...parts]));
    assert.equal(r.err?.reason, 'damaged', `${what}: ${r.err?.message}`);
    assert.equal(r.out.length, verified * CHUNK, what);
    assert.ok(r.out.equals(plain.subarray(0, r.out.length)), what);
  }

  // Appended: after the last chunk nothing may follow, neither garbage nor a valid chunk of this object.
  for (const extra of [randomBytes(10), randomBytes(SEALED + 3), chunk(4), chunk(1)]) {
    r = await decrypt(key, Buffer.concat([sealed, extra]));
    assert.equal(r.err?.reason, 'damaged', r.err?.message);
    assert.ok(r.out.length <= 4 * CHUNK);
  }
  // With a full last chunk, the reader sees it verify as the last one and says so.
  const even = randomBytes(2 * CHUNK);
  const evenSealed = await encrypt(key, even);
  r = await decrypt(key, Buffer.concat([evenSealed, randomBytes(100)]));
  assert.equal(r.err?.reason, 'damaged');
  assert.match(r.err!.message, /goes on after its last chunk \(chunk 2\)/);
  assert.ok(r.out.equals(even.subarray(0, CHUNK)));

  // A header from another object of the same key (another salt) does not fit these chunks.
  const other = await encrypt(key, plain);
  r = await decrypt(key, Buffer.concat([other.subarray(0, HEADER), sealed.subarray(HEADER)]));
  assert.equal(r.err?.reason, 'damaged');
  assert.equal(r.out.length, 0);

  assert.ok((await decrypt(key, sealed)).out.equals(plain), 'the untouched object reads');
});

test('the wrong key fails before the first byte and says which keys', async () => {
  const { root, store, key } = stores('offsite');
  const plain = randomBytes(3 * CHUNK + 5);
  await store.put('p/e/b/dump.pgc', uneven(plain));
  const otherKey = newKey();
  const other = new EncryptedStore(new LocalBackupStore(root, 'offsite'), otherKey);
  const got = await readThrough(other, 'p/e/b/dump.pgc');
  assert.equal(got.stage, 'get');
  assert.equal(got.err?.reason, 'wrong_key');
  assert.equal(got.err!.message,
    `backup object p/e/b/dump.pgc was encrypted with key ${key.id}, this store's key is ${otherKey.id}: the registry's key for store offsite is not the one these backups were written with; without that key they cannot be read`);
  assert.equal(got.err!.writtenWith, key.id);
  for (const k of [key, otherKey]) {
    assert.equal(got.err!.message.includes(k.key.toString('base64')), false);
    assert.equal(got.err!.message.includes(k.key.toString('hex')), false);
  }
  // A raw stream emits nothing either, also for a tiny object.
  const raw = await decrypt(otherKey, readFileSync(join(root, 'p/e/b/dump.pgc')));
  assert.equal(raw.err?.reason, 'wrong_key');
  assert.equal(raw.out.length, 0);
  await store.put('p/e/b/empty', Readable.from([]));
  const empty = await readThrough(other, 'p/e/b/empty');
  assert.equal(empty.err?.reason, 'wrong_key');
  assert.ok((await collect(await store.get('p/e/b/empty'))).equals(Buffer.alloc(0)));
});

test('a plain object read through an encrypting store: not_encrypted', async () => {
  const { inner, store } = stores();
  await inner.put('p/e/b/dump.pgc', Readable.from([Buffer.from('PGDMP\x01\x0e\x00' + 'x'.repeat(100_000))]));
  await inner.put('p/e/b/short', Readable.from([Buffer.from('hi')]));
  await inner.put('p/e/b/empty', Readable.from([]));
  for (const k of ['p/e/b/dump.pgc', 'p/e/b/short', 'p/e/b/empty']) {
    const got = await readThrough(store, k);
    assert.equal(got.stage, 'get', k);
    assert.equal(got.err?.reason, 'not_encrypted', `${k}: ${got.err?.message}`);
    assert.match(got.err!.message, new RegExp(`backup object ${k} is not encrypted`));
    assert.equal(got.out.length, 0);
  }
});

test('put: a failing source or an invalid key leaves nothing; missing objects and the rest pass through', async () => {
  const { root, inner, store } = stores('offsite');
  const failing = new Readable({
    read() {
      this.push(randomBytes(3 * CHUNK));
      this.destroy(new Error('source broke'));
    },
  });
  await assert.rejects(store.put('p/e/b2/dump.pgc', failing), /source broke/);
  assert.deepEqual(readdirSync(join(root, 'p/e/b2')), []);
  const source = uneven(randomBytes(1000));
  await assert.rejects(store.put('../escape', source), /invalid backup key/);
  await new Promise((r) => setImmediate(r));
  assert.ok(source.destroyed, 'the source is not left open');

  await assert.rejects(store.get('p/e/none/dump.pgc'), (err: Error) => err instanceof BackupObjectMissing);
  assert.equal(store.name, 'offsite');
  assert.equal(store.locationOf('p/e/b'), inner.locationOf('p/e/b'));
  await store.put('p/e/b3/dump.pgc', uneven(randomBytes(100)));
  await store.put('p/e/b3/manifest.json', uneven(Buffer.from('{}')));
  assert.equal(await store.exists('p/e/b3/dump.pgc'), true);
  assert.deepEqual((await store.list('p/e/b3')).sort(), ['dump.pgc', 'manifest.json']);
  const walked: { key: string; bytes: number }[] = [];
  for await (const o of store.walk('p/e/b3')) walked.push({ key: o.key, bytes: o.bytes });
  walked.sort((a, b) => a.key.localeCompare(b.key));
  assert.deepEqual(walked, [
    { key: 'p/e/b3/dump.pgc', bytes: HEADER + 100 + TAG },
    { key: 'p/e/b3/manifest.json', bytes: HEADER + 2 + TAG },
  ]);
  await store.delete('p/e/b3/manifest.json');
  assert.equal(await store.exists('p/e/b3/manifest.json'), false);
  await store.remove('p/e/b3');
  assert.equal(existsSync(join(root, 'p/e/b3')), false);
});

test('a reader that stops early closes the object', async () => {
  const { root, store } = stores();
  await store.put('p/e/b/dump.pgc', uneven(randomBytes(40 * CHUNK)));
  const fdsBefore = readdirSync('/proc/self/fd').length;
  const stream = await store.get('p/e/b/dump.pgc');
  for await (const _ of stream) break;
  // The file handle closes asynchronously after the iterator returns.
  for (let i = 0; i < 50 && readdirSync('/proc/self/fd').length > fdsBefore; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(readdirSync('/proc/self/fd').length, fdsBefore);
  assert.ok(readFileSync(join(root, 'p/e/b/dump.pgc')).length > 40 * CHUNK);
});

test('contentKey hides the SHA-1 and differs between keys', () => {
  const sha1 = createHash('sha1').update('invoice-2026-0042.pdf').digest('hex');
  const a = stores('offsite').store;
  const b = stores('offsite').store;
  const plain = new LocalBackupStore(join(scratch, 'plain'));
  const ka = a.contentKey('proj-1', sha1);
  assert.equal(plain.contentKey('proj-1', sha1), `proj-1/files/${sha1.slice(0, 2)}/${sha1}`);
  assert.match(ka, /^proj-1\/files\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
  assert.equal(ka.split('/')[3]!.slice(0, 2), ka.split('/')[2]);
  assert.equal(ka.includes(sha1), false);
  assert.equal(ka.includes(sha1.slice(0, 12)), false);
  assert.equal(a.contentKey('proj-1', sha1), ka, 'the same key names a file the same way every time (deduplication)');
  assert.notEqual(b.contentKey('proj-1', sha1), ka, 'another key names it otherwise');
  assert.notEqual(a.contentKey('proj-1', createHash('sha1').update('other').digest('hex')), ka);
  assert.equal(a.contentKey('proj-2', sha1).split('/').slice(1).join('/'), ka.split('/').slice(1).join('/'));
  assert.throws(() => a.contentKey('proj-1', '../../etc/passwd'), /invalid content name/);
  assert.throws(() => a.contentKey('proj-1', sha1.toUpperCase()), /invalid content name/);
});

test('contentKey is the documented HMAC, so the files a store already holds keep their names', () => {
  // A fixed key and file: the name every worker has written since content names exist (encryption.ts's header).
  const master = Buffer.alloc(32, 7);
  const store = new EncryptedStore(new LocalBackupStore(join(scratch, 'kat')), parseBackupKey(master.toString('hex'), 'the test key'));
  const sha1 = createHash('sha1').update('invoice-2026-0042.pdf').digest('hex');
  const naming = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'OdooOps-content-names', 32));
  const name = createHmac('sha256', naming).update(sha1).digest('hex');
  assert.equal(store.contentKey('proj-1', sha1), `proj-1/files/${name.slice(0, 2)}/${name}`);
  assert.equal(store.contentKey('proj-1', sha1), 'proj-1/files/0f/0f40874b8c33661fe6bf87e963185e2b9a5c8864615767823cd1e800008f5df0');
});

test('parseBackupKey: base64 and hex 32 bytes; anything else refused without echoing it', () => {
  const raw = randomBytes(32);
  const forms = [
    raw.toString('base64'),
    `${raw.toString('base64')}\n`,
    raw.toString('base64').replace(/=+$/, ''),
    raw.toString('base64url'),
    raw.toString('hex'),
    raw.toString('hex').toUpperCase(),
    `  ${raw.toString('hex')}\n`,
  ];
  const ids = new Set<string>();
  for (const f of forms) {
    const k = parseBackupKey(f, 'the key of backup store "offsite"');
    assert.ok(k.key.equals(raw), JSON.stringify(f));
    assert.match(k.id, /^[0-9a-f]{16}$/);
    assert.equal(k.id.includes(raw.toString('hex').slice(0, 16)), false, 'the id is a hash of the key, not a piece of it');
    ids.add(k.id);
  }
  assert.equal(ids.size, 1);
  assert.notEqual(parseBackupKey(randomBytes(32).toString('hex'), 'k').id, [...ids][0]);

  // A key put together by hand must carry its own id: otherwise every header would name another key.
  const forged = { id: parseBackupKey(randomBytes(32).toString('hex'), 'k').id, key: raw };
  assert.throws(() => encryptStream(forged), /invalid backup key/);
  assert.throws(() => new EncryptedStore(new LocalBackupStore(join(scratch, 'forged')), forged), /invalid backup key/);

  const short = randomBytes(16);
  const long = randomBytes(33);
  const bad = [
    [short.toString('base64'), /holds 16 bytes/],
    [short.toString('hex'), /holds 16 bytes/],
    [long.toString('base64'), /holds 33 bytes/],
    ['correct horse battery staple!', /neither base64 nor hex/],
    [`${raw.toString('base64').slice(0, 20)}$%${raw.toString('base64').slice(22)}`, /neither base64 nor hex/],
    ['', /neither base64 nor hex/],
  ] as const;
  for (const [text, says] of bad) {
    assert.throws(() => parseBackupKey(text, 'the key of backup store "offsite"'), (err: Error) => {
      assert.ok(err instanceof InfraError);
      assert.match(err.message, /^the key of backup store "offsite" is not a backup key/);
      assert.match(err.message, says);
      assert.match(err.message, /openssl rand -base64 32/);
      if (text.length > 4) assert.equal(err.message.includes(text.trim().slice(0, 8)), false, 'the value is not echoed');
      return true;
    });
  }
});

test('throughput and memory: 256 MiB encrypted and decrypted in constant memory', async () => {
  const key = newKey();
  const block = randomBytes(1024 * KiB);
  const total = 256;
  const bytes = total * 1024 * KiB;
  const source = () =>
    Readable.from((function* () {
      for (let i = 0; i < total; i++) yield block;
    })(), { objectMode: false });
  let peak = 0;
  let writes = 0;
  // Sampled: memoryUsage() reads /proc each time, which would cost more than the chunk.
  const watch = () => {
    if (writes++ % 16 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  };
  const base = process.memoryUsage().arrayBuffers;
  // Wall clock on a shared machine swings with the load; CPU time says what the work itself costs.
  const timed = async (work: () => Promise<void>) => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await work();
    const c = process.cpuUsage(c0);
    return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
  };
  const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);

  const nowhere = () => new Writable({ write: (_c, _e, cb) => (watch(), cb()) });
  const enc = await timed(() => pipeline(source(), encryptStream(key), nowhere()));
  const file = join(scratch, 'throughput.enc');
  await pipeline(source(), encryptStream(key), createWriteStream(file));
  assert.equal(statSync(file).size, HEADER + bytes + (bytes / CHUNK) * TAG);
  let out = 0;
  const dec = await timed(() => pipeline(createReadStream(file), decryptStream(key, 'throughput'), new Writable({ write: (c: Buffer, _e, cb) => (watch(), (out += c.length), cb()) })));
  assert.equal(out, bytes);
  // What reading the file alone costs, and one AES-256-GCM over the bytes with no streams and no chunks: the ceilings.
  const read = await timed(() => pipeline(createReadStream(file), nowhere()));
  rmSync(file);
  const raw = await timed(async () => {
    const c = createCipheriv('aes-256-gcm', key.key, randomBytes(12));
    for (let i = 0; i < total; i++) c.update(block);
    c.final();
  });
  const line = (what: string, t: { wall: number; cpu: number }) => `${what} ${mbps(t.wall)} MB/s (${mbps(t.cpu)} MB/s of CPU time)`;
  console.log(
    `encryption throughput, ${total} MiB: ${line('encrypt', enc)}; ${line('decrypt from a file', dec)}; ceilings: ${line('reading the file', read)}, ` +
      `${line('one AES-256-GCM in memory', raw)}; peak buffer memory ${((peak - base) / 1024 / 1024).toFixed(1)} MiB above the start`,
  );
  // Holding the object (256 MiB) would show here; chunks waiting for the garbage collector stay far below.
  assert.ok(peak - base < 192 * 1024 * KiB, `buffers peaked at ${((peak - base) / 1024 / 1024).toFixed(1)} MiB above the start`);
});

test('an object put in place of another (same key, e.g. a production dump over a masked clone\'s) fails its first tag under the new name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'odooops-enc-swap-'));
  try {
    const inner = new LocalBackupStore(dir, 'swap');
    const store = new EncryptedStore(inner, newKey());
    const prod = Buffer.from('PGDMP production: Ana Lima, ana@example.com, +351 912 345 678'.repeat(2000));
    const clone = Buffer.from('PGDMP masked clone: Person 1, person1@example.invalid'.repeat(2000));
    await store.put('p/prod/b1/dump.pgc', Readable.from([prod]));
    await store.put('p/staging/b2-clone/dump.pgc', Readable.from([clone]));
    // Someone with write access to the bucket but no key copies the production object over the clone's.
    writeFileSync(join(dir, 'p/staging/b2-clone/dump.pgc'), readFileSync(join(dir, 'p/prod/b1/dump.pgc')));
    const got = await readThrough(store, 'p/staging/b2-clone/dump.pgc');
    assert.equal(got.out.length, 0, 'not a byte of the swapped object is handed out');
    assert.ok(got.err instanceof BackupDecryptError, `${got.stage}`);
    assert.equal(got.err.reason, 'damaged');
    // The object under its own name still reads: the name, not the bytes, is what changed.
    assert.deepEqual((await readThrough(store, 'p/prod/b1/dump.pgc')).out, prod);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
