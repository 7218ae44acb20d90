// The content-addressed filestore module on its own, against a real local store and real tar/find:
// a second write after 1 % of files changed reads and uploads only those; the tar rebuilt from the
// objects is the filestore, file for file; a flipped byte or a missing object stops the stream naming
// the file, before that file is complete; a file whose content does not match its name is stored under
// its real SHA-1; the sweep frees only what no kept index lists; dev pull's unpacking refuses a file
// the index does not vouch for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';
import type * as C from '../contract/index.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { EncryptedStore, parseBackupKey } from '../server/storage/encryption.ts';
import { contentMap, packKey, PACK_TARGET } from '../server/storage/filestore-packs.ts';
import {
  contentPrefix, extractVerified, filestoreTar, listFiles, readIndex, sweepContent, tarOfObjects, verifyFilestoreObjects, writeFilestoreObjects,
} from '../server/storage/filestore-objects.ts';
import { fingerprintDir } from './helpers/debian-postgres.ts';

const PROJECT = '11111111-2222-3333-4444-555555555555';
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** An Odoo-like filestore: files named <ab>/<sha1> of their content, a few big ones, one not named so. */
function makeFilestore(dir: string, n: number): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < n; i++) {
    const data = randomBytes(i % 50 === 0 ? 5 * 2 ** 20 + i : 200 + ((i * 7919) % 20_000));
    const s = sha1(data);
    files[`${s.slice(0, 2)}/${s}`] = data;
  }
  files['checklist/notes.txt'] = Buffer.from('not named by its SHA-1');
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), data);
  }
  return files;
}

async function tarFiles(tar: Readable): Promise<Record<string, string>> {
  const extract = tarStream.extract();
  tar.on('error', (err) => extract.destroy(err));
  tar.pipe(extract as unknown as NodeJS.WritableStream);
  const out: Record<string, string> = {};
  for await (const e of extract) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    out[e.header.name] = sha1(Buffer.concat(chunks));
  }
  return out;
}

/** Where the store keeps a file's bytes on disk: the pack (or own object) file, and the file's offset in it. */
async function onDisk(store: LocalBackupStore, sha: string): Promise<{ path: string; offset: number; key: string; pack: boolean }> {
  const at = (await contentMap(store, PROJECT)).locate(sha);
  assert.ok(at, `the store holds ${sha}`);
  return { path: store.localPath(at.key)!, offset: at.offset, key: at.key, pack: at.pack };
}

function setup(n = 200) {
  const root = mkdtempSync(join(tmpdir(), 'odooops-objects-test-'));
  const fs = join(root, 'filestore');
  const files = makeFilestore(fs, n);
  const store = new LocalBackupStore(join(root, 'store'));
  const lines: string[] = [];
  const write = async (prefix: string) => writeFilestoreObjects({
    store, projectId: PROJECT, prefix, dirs: [{ dir: fs, files: await listFiles(fs) }], log: (l) => lines.push(l), signal: new AbortController().signal,
  });
  return { root, fs, files, store, lines, write, close: () => rmSync(root, { recursive: true, force: true }) };
}

test('a second write after 1 % of files changed uploads only those; the tar rebuilt from objects is the filestore', async () => {
  const s = setup(400);
  try {
    let t = performance.now();
    const first = await s.write(`${PROJECT}/env/b1`);
    const firstMs = performance.now() - t;
    const total = Object.keys(s.files).length;
    assert.equal(first.files, total);
    assert.equal(first.uploaded.files, total, 'everything is new the first time');
    assert.equal(first.bytes, Object.values(s.files).reduce((a, b) => a + b.length, 0));

    // 1 % new files (Odoo never changes a file in place: a changed attachment is a new file).
    const added: Record<string, Buffer> = {};
    for (let i = 0; i < 4; i++) {
      const data = randomBytes(3000 + i);
      const h = sha1(data);
      added[`${h.slice(0, 2)}/${h}`] = data;
      mkdirSync(join(s.fs, h.slice(0, 2)), { recursive: true });
      writeFileSync(join(s.fs, h.slice(0, 2), h), data);
    }
    t = performance.now();
    const second = await s.write(`${PROJECT}/env/b2`);
    const secondMs = performance.now() - t;
    // The 4 new files, and the one file not named by its SHA-1 (always read; its object exists, so not uploaded).
    assert.equal(second.uploaded.files, 4);
    assert.equal(second.uploaded.bytes, Object.values(added).reduce((a, b) => a + b.length, 0));
    assert.equal(second.files, total + 4);
    assert.ok(s.lines.some((l) => l === `filestore: ${total + 4} files, ${total - 1} already in the store, 5 to read`), s.lines.join('\n'));
    console.log(`# module: first write ${total} files ${(first.bytes / 2 ** 20).toFixed(1)} MiB in ${firstMs.toFixed(0)} ms; second uploaded ${second.uploaded.files} files ${second.uploaded.bytes} bytes in ${secondMs.toFixed(0)} ms`);

    // Each content stored once: the big files as objects of their own, the small ones in a few packs.
    const objects = [];
    for await (const o of s.store.walk(contentPrefix(PROJECT))) objects.push(o);
    const map = await contentMap(s.store, PROJECT);
    const big = Object.values(s.files).filter((b) => b.length > 4 << 20).length;
    assert.equal(map.standalone.size, big, 'files over 4 MiB are objects of their own');
    const packed = [...map.packs.values()].flatMap((p) => p.entries.map((e) => e.s));
    assert.equal(new Set(packed).size, packed.length, 'no content twice in the packs');
    assert.equal(packed.length + big, total + 4, 'every content stored once');
    const smallBytes = Object.values(s.files).filter((b) => b.length <= 4 << 20).reduce((a, b) => a + b.length, 0);
    assert.equal(map.packs.size, Math.ceil(smallBytes / PACK_TARGET) + 1, 'the first write fills packs of 16 MiB; the second adds one');
    assert.equal(objects.length, big + map.packs.size + 2, 'objects: the big files, the packs and one pack index per write');
    for (const [p, data] of Object.entries({ ...s.files, ...added })) assert.equal(map.locate(sha1(data))?.n, data.length, p);

    const rebuilt = await tarFiles(await filestoreTar(s.store, PROJECT, second));
    assert.deepEqual(rebuilt, await fingerprintDir(s.fs), 'the tar holds every file with its content');
    const v = await verifyFilestoreObjects(s.store, PROJECT, second);
    assert.equal(v.damaged.length, 0);
    assert.equal(v.checked, total + 4);
    const sampled = await verifyFilestoreObjects(s.store, PROJECT, second, { sample: 10 });
    assert.equal(sampled.checked, 10);
  } finally {
    s.close();
  }
});

test('a flipped byte or a missing object stops the tar naming the file; the damaged file never arrives complete', async () => {
  const s = setup(60);
  try {
    const f = await s.write(`${PROJECT}/env/b1`);
    const index = await readIndex(s.store, f);
    const small = index.find((e) => e.n < 100_000 && e.p.includes('/') && !e.p.startsWith('checklist'))!;
    const big = index.find((e) => e.n > 2 ** 20)!;
    for (const victim of [small, big]) {
      const at = await onDisk(s.store, victim.s);
      assert.equal(at.pack, victim === small, 'small files are in a pack, big ones an object of their own');
      const path = at.path;
      const good = readFileSync(path);
      const bad = Buffer.from(good);
      bad[at.offset + victim.n - 1]! ^= 1; // the file's very last byte: only a check at its end can catch it
      writeFileSync(path, bad);
      const got: string[] = [];
      await assert.rejects(async () => {
        // (A damaged first file fails filestoreTar itself, before any byte: what an HTTP answer needs.)
        const extract = tarStream.extract();
        const tar = await filestoreTar(s.store, PROJECT, f);
        tar.on('error', (err) => extract.destroy(err));
        tar.pipe(extract as unknown as NodeJS.WritableStream);
        for await (const e of extract) {
          const chunks: Buffer[] = [];
          for await (const c of e) chunks.push(c as Buffer);
          got.push(e.header.name);
          assert.equal(sha1(Buffer.concat(chunks)), index.find((x) => x.p === e.header.name)!.s, `${e.header.name} arrived complete only when good`);
        }
      }, new RegExp(`filestore file ${victim.p} is damaged in the backup store: (its object has|its bytes in the pack have) the SHA-1 [0-9a-f]{40}, the index says ${victim.s}`));
      assert.ok(!got.includes(victim.p), 'the damaged file was never complete in the tar');
      const v = await verifyFilestoreObjects(s.store, PROJECT, f);
      assert.deepEqual(v.damaged.map((d) => d.p), [victim.p]);
      writeFileSync(path, good);
    }
    // A pack gone: the first of its files is named (nothing of the tar is emitted before the check).
    const pack = await onDisk(s.store, small.s);
    const inPack = index.filter((e) => e.n <= 4 << 20);
    unlinkSync(pack.path);
    await assert.rejects(async () => tarFiles(await filestoreTar(s.store, PROJECT, f)), new RegExp(`filestore file (${inPack.map((e) => e.p.replace('.', '\\.')).join('|')}) is damaged in the backup store: it is in no pack or object of the store`));
    const v = await verifyFilestoreObjects(s.store, PROJECT, f);
    assert.deepEqual(v.damaged.map((d) => d.p).sort(), inPack.map((e) => e.p).sort(), 'every file of the lost pack is reported');
  } finally {
    s.close();
  }
});

test('a reader aborted mid-tar (a cancelled restore) ends the tar with no error left uncaught, at any point of it', async () => {
  // tar-stream's pack and entries are streamx streams that emit 'error' a tick after an aborted
  // pipeline stopped listening: once uncaught, it ended the worker's process.
  const s = setup(60);
  const uncaught: unknown[] = [];
  const seen = (err: unknown) => uncaught.push(err);
  process.on('uncaughtExceptionMonitor', seen);
  try {
    const f = await s.write(`${PROJECT}/env/b1`);
    let total = 0;
    await pipeline(await filestoreTar(s.store, PROJECT, f), new Writable({ write: (c: Buffer, _e, cb) => { total += c.length; cb(); } }));
    for (const at of [1, 0.3, 0.6, 0.95].map((x) => Math.ceil(x * total))) {
      const abort = new AbortController();
      let got = 0;
      // A slow reader (pg_restore's tar, a client), so the pack is mid-entry when the abort lands.
      const slow = new Writable({
        highWaterMark: 1,
        write(c: Buffer, _e, cb) {
          got += c.length;
          if (got >= at) abort.abort();
          setTimeout(cb, 1);
        },
      });
      await assert.rejects(pipeline(await filestoreTar(s.store, PROJECT, f, abort.signal), slow, { signal: abort.signal }), { name: 'AbortError' });
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(uncaught, [], 'no error escaped');
  } finally {
    process.off('uncaughtExceptionMonitor', seen);
    s.close();
  }
});

test('a file whose content does not match its name is stored under its real SHA-1 and comes back as it was', async () => {
  const s = setup(10);
  try {
    const liar = `ab/ab${'0'.repeat(38)}`;
    mkdirSync(join(s.fs, 'ab'), { recursive: true });
    writeFileSync(join(s.fs, liar), 'this is not the content its name claims');
    const f = await s.write(`${PROJECT}/env/b1`);
    assert.ok(s.lines.some((l) => l.includes(`filestore file ${liar} (on disk) has the SHA-1 ${sha1(Buffer.from('this is not the content its name claims'))}`)), s.lines.join('\n'));
    const entry = (await readIndex(s.store, f)).find((e) => e.p === liar)!;
    assert.equal(entry.s, sha1(Buffer.from('this is not the content its name claims')));
    assert.ok(!s.store.localPath(s.store.contentKey(PROJECT, `ab${'0'.repeat(38)}`)), 'nothing stored under the claimed name');
    assert.equal((await contentMap(s.store, PROJECT)).locate(`ab${'0'.repeat(38)}`), undefined, 'no pack holds the claimed name');
    assert.deepEqual(await tarFiles(await filestoreTar(s.store, PROJECT, f)), await fingerprintDir(s.fs));
  } finally {
    s.close();
  }
});

test('the sweep frees what no kept index lists: whole packs, packs mostly freed rewritten, a killed writer\'s pack; nothing younger than the grace period', async () => {
  const s = setup(60);
  try {
    const m = (f: C.ObjectsFilestore) => ({ filestore: f }) as C.BackupManifest;
    const later = new Date(Date.now() + 2 * 3600_000);
    const old = await s.write(`${PROJECT}/env/b1`);
    const firstPack = await onDisk(s.store, sha1(s.files['checklist/notes.txt']!));
    // Most small files go (Odoo deleted their attachments), three new ones come: the first pack is mostly freed.
    const small = Object.keys(s.files).filter((p) => /^[0-9a-f]{2}\//.test(p) && s.files[p]!.length < 4 << 20);
    const removed = small.slice(0, Math.ceil(small.length * 0.8));
    for (const p of removed) unlinkSync(join(s.fs, p));
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(5000 + i);
      const h = sha1(data);
      mkdirSync(join(s.fs, h.slice(0, 2)), { recursive: true });
      writeFileSync(join(s.fs, h.slice(0, 2), h), data);
    }
    const kept = await s.write(`${PROJECT}/env/b2`);
    assert.equal(kept.uploaded.files, 3);
    // A writer killed after its pack and before its index: a pack no index lists.
    const orphan = randomBytes(1000);
    const orphanKey = packKey(PROJECT, randomBytes(16).toString('hex'));
    await s.store.put(orphanKey, Readable.from([orphan]));

    // Everything written just now: within the grace period, nothing goes.
    let r = await sweepContent({ store: s.store, projectId: PROJECT, kept: [m(kept)], log: () => {} });
    assert.deepEqual([r.deleted, r.repacked], [0, 0]);
    assert.equal(r.young, 2, 'the mostly freed pack and the orphan wait for the grace period');

    // An hour and more later: the first pack's still-needed files are written into a new pack and it goes;
    // the orphan goes; the first write's pack index goes with its only pack.
    const lines: string[] = [];
    r = await sweepContent({ store: s.store, projectId: PROJECT, kept: [m(kept)], log: (l) => lines.push(l), now: later });
    assert.equal(r.repacked, 1, lines.join('\n'));
    assert.equal(r.deleted, 3, 'the first pack, the orphan, the first pack index');
    assert.ok(r.freedBytes >= removed.reduce((a, p) => a + s.files[p]!.length, 0));
    assert.ok(!existsSync(firstPack.path) && !s.store.localPath(orphanKey), 'the freed packs are gone from the disk');
    const map = await contentMap(s.store, PROJECT);
    for (const p of removed) assert.equal(map.locate(sha1(s.files[p]!)), undefined, `${p} is freed`);
    assert.deepEqual(await tarFiles(await filestoreTar(s.store, PROJECT, kept)), await fingerprintDir(s.fs), 'the kept backup is whole');
    assert.equal((await verifyFilestoreObjects(s.store, PROJECT, kept)).damaged.length, 0);
    // The old backup, no longer kept, has lost files: a backup listed as kept never would.
    assert.ok((await verifyFilestoreObjects(s.store, PROJECT, old)).damaged.length >= removed.length);
    // Swept again: nothing more to do.
    r = await sweepContent({ store: s.store, projectId: PROJECT, kept: [m(kept)], log: () => {}, now: later });
    assert.deepEqual([r.deleted, r.repacked], [0, 0]);

    // A pack index that cannot be read: nothing is deleted (its packs would look unlisted).
    const ix = [...map.indexes.keys()][0]!;
    const good = readFileSync(s.store.localPath(ix)!);
    writeFileSync(s.store.localPath(ix)!, Buffer.concat([good, Buffer.from('x')]));
    for (const p of small.slice(-3)) if (existsSync(join(s.fs, p))) unlinkSync(join(s.fs, p));
    await assert.rejects(sweepContent({ store: s.store, projectId: PROJECT, kept: [], log: () => {}, now: later }), /not sweeping the filestore objects: the pack index .* cannot be read .*nothing was deleted/);
    writeFileSync(s.store.localPath(ix)!, good);
    // A kept backup whose index cannot be read: nothing is deleted at all.
    unlinkSync(s.store.localPath(kept.index.key)!);
    await assert.rejects(sweepContent({ store: s.store, projectId: PROJECT, kept: [m(kept), m(old)], log: () => {}, now: later }), /not sweeping the filestore objects: the index of the kept backup .* cannot be read/);
    assert.equal((await contentMap(s.store, PROJECT)).packs.size, map.packs.size);
  } finally {
    s.close();
  }
});

test('a repack killed half-way (before its index, or before the old pack went) loses nothing; a reader whose map predates a repack still reads every file', async () => {
  const m = (f: C.ObjectsFilestore) => ({ filestore: f }) as C.BackupManifest;
  const later = new Date(Date.now() + 2 * 3600_000);
  /** The store, with puts or deletes of matching keys failing (a worker killed there). */
  const failing = (base: LocalBackupStore, o: { put?: RegExp; delete?: RegExp }): LocalBackupStore => Object.assign(Object.create(base) as LocalBackupStore, {
    put: (key: string, data: Readable, signal?: AbortSignal) => (o.put?.test(key) ? Promise.reject(new Error('killed')) : base.put(key, data, signal)),
    exists: (key: string) => (o.put?.test(key) ? Promise.resolve(false) : base.exists(key)),
    delete: (key: string) => (o.delete?.test(key) ? Promise.reject(new Error('killed')) : base.delete(key)),
  });
  for (const killed of ['before its index', 'before the old pack went'] as const) {
    const s = setup(60);
    try {
      await s.write(`${PROJECT}/env/b1`);
      const small = Object.keys(s.files).filter((p) => /^[0-9a-f]{2}\//.test(p) && s.files[p]!.length < 4 << 20);
      for (const p of small.slice(0, Math.ceil(small.length * 0.8))) unlinkSync(join(s.fs, p));
      const kept = await s.write(`${PROJECT}/env/b2`);
      const index = await readIndex(s.store, kept);
      const before = await contentMap(s.store, PROJECT);
      const whole = await fingerprintDir(s.fs);
      const broken = failing(s.store, killed === 'before its index' ? { put: /\/packs\/index\// } : { delete: /\/packs\/[0-9a-f]{2}\// });
      await assert.rejects(sweepContent({ store: broken, projectId: PROJECT, kept: [m(kept)], log: () => {}, now: later }), /killed/);
      assert.deepEqual(await tarFiles(await filestoreTar(s.store, PROJECT, kept)), whole, `${killed}: the kept backup is whole after the killed sweep`);
      // The next sweeps (a later day: what the killed one wrote is past the grace period too) finish the job.
      for (let i = 0; i < 3; i++) {
        await sweepContent({ store: s.store, projectId: PROJECT, kept: [m(kept)], log: () => {}, now: new Date(later.getTime() + 2 * 3600_000) });
        assert.deepEqual(await tarFiles(await filestoreTar(s.store, PROJECT, kept)), whole, `${killed}: whole after sweep ${i + 1}`);
        assert.equal((await verifyFilestoreObjects(s.store, PROJECT, kept)).damaged.length, 0);
      }
      const after = await contentMap(s.store, PROJECT);
      assert.equal(after.unindexed.size, 0, 'no pack without an index is left');
      assert.equal(after.packs.size, before.packs.size, 'the mostly freed pack was replaced by one');
      // A reader that made its map before the repack: the old pack is gone, its files are found in the new one.
      assert.ok([...before.packs.keys()].some((k) => !after.packs.has(k)), 'a pack the old map names is gone');
      assert.deepEqual(await tarFiles(tarOfObjects(s.store, PROJECT, index, undefined, { map: before })), whole, 'read through a stale map');
    } finally {
      s.close();
    }
  }
});

test('many pack indexes (one per backup) are merged into one by the sweep; a merge killed half-way loses nothing', async () => {
  const s = setup(20);
  try {
    const m = (f: C.ObjectsFilestore) => ({ filestore: f }) as C.BackupManifest;
    const backups: C.ObjectsFilestore[] = [];
    for (let i = 0; i < 11; i++) {
      const data = randomBytes(4000 + i);
      const h = sha1(data);
      mkdirSync(join(s.fs, h.slice(0, 2)), { recursive: true });
      writeFileSync(join(s.fs, h.slice(0, 2), h), data);
      backups.push(await s.write(`${PROJECT}/env/b${i}`));
    }
    assert.equal((await contentMap(s.store, PROJECT)).indexes.size, 11, 'one pack index per backup');
    const whole = await fingerprintDir(s.fs);
    const later = new Date(Date.now() + 2 * 3600_000);
    // Killed after the merged index, before the old ones went: every file is still found.
    const broken = Object.assign(Object.create(s.store) as LocalBackupStore, {
      delete: (key: string) => (/\/packs\/index\//.test(key) ? Promise.reject(new Error('killed')) : s.store.delete(key)),
    });
    await assert.rejects(sweepContent({ store: broken, projectId: PROJECT, kept: backups.map(m), log: () => {}, now: later }), /killed/);
    assert.deepEqual(await tarFiles(await filestoreTar(s.store, PROJECT, backups.at(-1)!)), whole);
    // Young indexes are not merged (their writers may be between their packs and their record).
    const young: string[] = [];
    await sweepContent({ store: s.store, projectId: PROJECT, kept: backups.map(m), log: (l) => young.push(l) });
    assert.ok(!young.some((l) => /merged/.test(l)), young.join('\n'));
    // A reader that walked the store before the merge and reads after it: the indexes it listed are gone,
    // it walks them again and finds the merged one.
    const stale: { key: string; bytes: number; modified: Date }[] = [];
    for await (const o of s.store.walk(contentPrefix(PROJECT))) stale.push(o);
    let walks = 0;
    const lagging = Object.assign(Object.create(s.store) as LocalBackupStore, {
      walk: (prefix: string) => (walks++ === 0 ? (async function* () { yield* stale; })() : s.store.walk(prefix)),
    });
    const lines: string[] = [];
    await sweepContent({ store: s.store, projectId: PROJECT, kept: backups.map(m), log: (l) => lines.push(l), now: later });
    assert.deepEqual(await tarFiles(await filestoreTar(lagging, PROJECT, backups.at(-1)!)), whole, 'a reader racing the merge reads every file');
    assert.ok(walks >= 2, 'it walked the indexes again');
    assert.ok(lines.some((l) => /filestore: 1[12] pack indexes merged into one/.test(l)), lines.join('\n'));
    const map = await contentMap(s.store, PROJECT);
    assert.equal(map.indexes.size, 1);
    assert.equal(map.unindexed.size, 0, 'every pack is listed by the merged index');
    for (const b of backups) assert.equal((await verifyFilestoreObjects(s.store, PROJECT, b)).damaged.length, 0);
    assert.deepEqual(await tarFiles(await filestoreTar(s.store, PROJECT, backups.at(-1)!)), whole);
  } finally {
    s.close();
  }
});

test('dev pull unpacking: every file checked against the index; a file it does not list, or a changed one, is refused', async () => {
  const s = setup(20);
  try {
    const f = await s.write(`${PROJECT}/env/b1`);
    const index = await readIndex(s.store, f);
    const out = join(s.root, 'pulled');
    const got = await extractVerified(await filestoreTar(s.store, PROJECT, f), out, index);
    assert.equal(got.files, index.length);
    assert.deepEqual(await fingerprintDir(out), await fingerprintDir(s.fs));

    // A tar with one file more than the index, and one with a file changed in transit.
    const extra = tarStream.pack();
    extra.entry({ name: '../../etc/evil', size: 1 }, Buffer.from('x'));
    extra.finalize();
    await assert.rejects(extractVerified(Readable.from(extra as unknown as AsyncIterable<Buffer>), join(s.root, 'p2'), index), /the filestore sent \.\.\/\.\.\/etc\/evil .* which the backup's index does not list/);
    const e = index[0]!;
    const changed = tarStream.pack();
    changed.entry({ name: e.p, size: e.n }, Buffer.alloc(e.n, 1));
    changed.finalize();
    await assert.rejects(extractVerified(Readable.from(changed as unknown as AsyncIterable<Buffer>), join(s.root, 'p3'), index), new RegExp(`filestore file ${e.p} arrived damaged`));
    // Short of a file: refused too.
    const short = tarOfObjects(s.store, PROJECT, index.slice(1));
    await assert.rejects(extractVerified(short, join(s.root, 'p4'), index), /arrived without 1 file\(s\) its index lists/);
  } finally {
    s.close();
  }
});

test('a file truncated on disk after a backup (same name, other size) is read again: the next backup holds what is on disk, through an encrypting store too', async () => {
  for (const encrypted of [false, true]) {
    const s = setup(50);
    try {
      const store = encrypted ? new EncryptedStore(s.store, parseBackupKey(randomBytes(32).toString('base64'), 'the test key')) : s.store;
      const write = async (prefix: string) => writeFilestoreObjects({
        store, projectId: PROJECT, prefix, dirs: [{ dir: s.fs, files: await listFiles(s.fs) }], log: (l) => s.lines.push(l), signal: new AbortController().signal,
      });
      await write(`${PROJECT}/env/b1`);
      const named = Object.keys(s.files).find((p) => /^[0-9a-f]{2}\/[0-9a-f]{40}$/.test(p))!;
      writeFileSync(join(s.fs, named), s.files[named]!.subarray(0, 5)); // a crash or a disk error cut it short
      const second = await write(`${PROJECT}/env/b2`);
      assert.ok(s.lines.includes(`filestore: ${Object.keys(s.files).length} files, ${Object.keys(s.files).length - 2} already in the store, 2 to read`), `${encrypted}: ${s.lines.join('\n')}`);
      const index = await readIndex(store, second);
      const entry = index.find((e) => e.p === named)!;
      assert.equal(entry.n, 5);
      assert.equal(entry.s, sha1(s.files[named]!.subarray(0, 5)), 'stored under the SHA-1 of what is on disk');
      // The backup is whole: every file rebuilds as it is on disk, the truncated one included.
      assert.deepEqual(await tarFiles(await filestoreTar(store, PROJECT, second)), await fingerprintDir(s.fs));
      assert.equal((await verifyFilestoreObjects(store, PROJECT, second)).damaged.length, 0);
    } finally {
      s.close();
    }
  }
});
