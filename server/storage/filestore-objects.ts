// The content-addressed filestore. Odoo names each file of a filestore by the SHA-1 of its content
// (<ab>/<sha1>), so a backup stores each file once per project and store (small files in packs,
// filestore-packs.ts; big ones as the object store.contentKey(project, sha1)), and lists the files it
// holds in an index (gzip'd JSON lines {"p": path, "s": sha1, "n": size}). A daily backup reads and
// uploads only the files the store does not hold yet; restores, clones, the Odoo zip and dev pull rebuild
// a tar from the packs and objects, checking each file's SHA-1 and size before it is emitted; retention
// frees a file only when no kept backup lists it (deleting packs, or rewriting those mostly freed).
//
// Files are read as the run user (find, tar), as every other filestore access of the worker.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import type { BackupManifest, ObjectsFilestore } from '../../contract/index.ts';
import { BackupObjectMissing, hashing, type BackupStore } from './backup-store.ts';
import { contentMap, contentPrefix, mergePackIndexes, PACK_FILE_MAX, PackWriter, putOnce, takeFromPack, type ContentMap, type Location } from './filestore-packs.ts';
import { spawnTool, withTool } from '../odoo/pg-tools.ts';
import { tarExtract, tarPack } from './tar-streams.ts';

export { contentMap, contentPrefix };

/** One file of a backup's filestore: its path in the filestore, its SHA-1, its size. */
export interface IndexEntry {
  p: string;
  s: string;
  n: number;
}

export type FilestorePart = NonNullable<BackupManifest['filestore']>;
export const isObjects = (f: object | null | undefined): f is ObjectsFilestore => !!f && 'format' in f && f.format === 'objects';

const SHA1 = /^[0-9a-f]{40}$/;
/** The SHA-1 a path claims by Odoo's naming (<ab>/<sha1>), or null. */
export function claimedSha1(p: string): string | null {
  const m = /^([0-9a-f]{2})\/([0-9a-f]{40})$/.exec(p);
  return m && m[2]!.startsWith(m[1]!) ? m[2]! : null;
}

/** A path an index may hold: relative, no empty, `.` or `..` segment, no NUL or newline. */
export function safePath(p: string): boolean {
  return p.length > 0 && p.length < 4096 && !p.startsWith('/') && !/[\0\n\r\\]/.test(p) && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

// ---- the index ----------------------------------------------------------------------------------

export function encodeIndex(entries: IndexEntry[]): Buffer {
  return gzipSync(Buffer.from(entries.map((e) => `${JSON.stringify({ p: e.p, s: e.s, n: e.n })}\n`).join('')));
}

/**
 * A backup's index, read from the store and checked against the manifest (size and SHA-256), every line
 * checked (safe path, SHA-1, size). Throws an error naming the backup's index otherwise.
 */
export async function readIndex(store: BackupStore, f: ObjectsFilestore, signal?: AbortSignal): Promise<IndexEntry[]> {
  const h = hashing();
  const chunks: Buffer[] = [];
  await pipeline(await store.get(f.index.key), h, createGunzip(), new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  }), { signal }).catch((err) => {
    if (err instanceof BackupObjectMissing) throw err;
    // A damaged gzip is reported as the damage it is (the digest tells, below) when it can be.
    if (signal?.aborted) throw err;
    throw new Error(`the filestore index ${f.index.key} is damaged (${(err as Error).message}); restore another backup`, { cause: err });
  });
  const got = h.result();
  if (got.sha256 !== f.index.sha256 || got.bytes !== f.index.bytes) {
    throw new Error(`the filestore index ${f.index.key} is damaged: sha256 ${got.sha256} (${got.bytes} bytes), the backup recorded ${f.index.sha256} (${f.index.bytes} bytes); restore another backup`);
  }
  return indexLines(Buffer.concat(chunks), f, `the filestore index ${f.index.key}`);
}

function indexLines(text: Buffer, f: ObjectsFilestore, label: string): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (const line of text.toString('utf8').split('\n')) {
    if (!line) continue;
    let e: IndexEntry;
    try {
      e = JSON.parse(line) as IndexEntry;
    } catch {
      throw new Error(`${label} has an invalid line: ${line.slice(0, 200)}`);
    }
    if (typeof e.p !== 'string' || !safePath(e.p) || typeof e.s !== 'string' || !SHA1.test(e.s) || !Number.isSafeInteger(e.n) || e.n < 0) {
      throw new Error(`${label} has an invalid line: ${line.slice(0, 200)}`);
    }
    out.push({ p: e.p, s: e.s, n: e.n });
  }
  if (out.length !== f.files) throw new Error(`${label} lists ${out.length} files, the backup recorded ${f.files}`);
  return out;
}

// ---- what the store holds -----------------------------------------------------------------------

/** The files of a backup the store does not hold (none: an empty list). */
export async function missingObjects(store: BackupStore, projectId: string, f: ObjectsFilestore, signal?: AbortSignal): Promise<IndexEntry[]> {
  const [index, map] = await Promise.all([readIndex(store, f, signal), contentMap(store, projectId, signal)]);
  return index.filter((e) => map.locate(e.s)?.n !== e.n);
}

// ---- writing ------------------------------------------------------------------------------------

/** A file the run user's `find` saw: path relative to the filestore, size. */
export interface ListedFile {
  p: string;
  n: number;
}

/** Every regular file under a directory (`find` as the run user; the directory itself may be a symbolic link): path and size. */
export async function listFiles(dir: string, signal?: AbortSignal): Promise<ListedFile[]> {
  try {
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    throw new Error(`the filestore ${dir} is missing on this worker (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); restore the directory, or an admin points the environment at another filestore root (odooops env set)`);
  }
  const find = spawnTool('find', ['-H', dir, '-type', 'f', '-printf', '%P\\0%s\\0'], { signal });
  const chunks: Buffer[] = [];
  await withTool(find, (async () => {
    for await (const c of find.child.stdout!) chunks.push(c as Buffer);
  })());
  const fields = Buffer.concat(chunks).toString('utf8').split('\0');
  const out: ListedFile[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const p = fields[i]!;
    // A name a filestore cannot hold (a newline, a backslash) is not Odoo's; it stays out, said by the caller.
    if (safePath(p)) out.push({ p, n: Number(fields[i + 1]) });
  }
  return out;
}

/** A file to store: its path and the bytes (read or drained by the writer before the next is given). */
export interface IncomingFile {
  p: string;
  n: number;
  stream: Readable;
}

/**
 * `tar --create` (as the run user) of the files of `dir` whose NUL-terminated paths are written to its
 * stdin. --verbatim-files-from: a name starting with "-" is a name; --no-recursion: a path that became a
 * directory since the listing does not pull a tree in; --ignore-failed-read: a file Odoo deleted since
 * (its garbage collection) is skipped (and said on stderr).
 */
export const tarOfListed = (dir: string, signal: AbortSignal) =>
  spawnTool('tar', ['--create', '--file=-', '--directory', dir, '--null', '--verbatim-files-from', '--no-recursion', '--ignore-failed-read', '--files-from=-'], { signal, stdin: 'pipe' });

/** Files read from a directory as the run user: `tar --create` of just those, parsed as it streams. */
export async function* readFiles(dir: string, paths: string[], signal: AbortSignal, warn: (line: string) => void): AsyncGenerator<IncomingFile> {
  if (paths.length === 0) return;
  const tar = tarOfListed(dir, signal);
  const extract = tarExtract(tar.child.stdout!);
  const fed = pipeline(Readable.from(paths.map((p) => `${p}\0`)), tar.child.stdin!, { signal });
  const work = withTool(tar, fed);
  work.catch(() => {});
  let taken = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const p = h.name.replace(/^\.\//, '');
      if ((h.type !== 'file' && h.type !== 'contiguous-file') || !safePath(p)) {
        entry.resume();
        continue;
      }
      taken++;
      yield { p, n: h.size ?? 0, stream: Readable.from(entry) };
    }
    await work;
  } finally {
    if (!tar.child.killed && tar.child.exitCode === null) tar.child.kill('SIGKILL');
  }
  if (taken < paths.length) warn(`${paths.length - taken} file(s) listed a moment before were gone when read (deleted by Odoo meanwhile): left out`);
}

export interface WriteObjectsInput {
  store: BackupStore;
  projectId: string;
  /** The backup's prefix: the index is <prefix>/filestore.index. */
  prefix: string;
  /** Files already in the store by content (a clone of a backup takes its index's entries). */
  known?: IndexEntry[];
  /** Directories and the files of theirs to back up (each read only when its object is not there yet). */
  dirs?: { dir: string; files: ListedFile[] }[];
  /** Files to read and hash in any case (an import's). */
  incoming?: AsyncIterable<IncomingFile>;
  log: (line: string) => void;
  signal: AbortSignal;
  /** How many packs are uploaded at once (each holds up to ~16 MiB in memory until it is stored). */
  parallel?: number;
}

/**
 * Writes a filestore in object form: learns what the store holds (one walk and its pack indexes), reads
 * only the files it lacks, packs the small ones (filestore-packs.ts) and uploads the big ones as objects of
 * their own, then writes the index. Called with the project's content lock held shared (see
 * BackupCatalog), so a sweep cannot remove a pack or object this backup counts on before its record.
 */
export async function writeFilestoreObjects(o: WriteObjectsInput): Promise<ObjectsFilestore> {
  const { store, projectId, signal } = o;
  const parallel = o.parallel ?? 4;
  const map = await contentMap(store, projectId, signal);
  const key = (sha1: string) => store.contentKey(projectId, sha1);
  /** Files (by SHA-1) this backup put into a pack or an object, or is putting. */
  const added = new Set<string>();
  const entries = new Map<string, IndexEntry>();
  const packs = new PackWriter(store, projectId, signal, parallel);
  let uploadedFiles = 0;
  let uploadedBytes = 0;
  let mismatched = 0;

  for (const e of o.known ?? []) {
    if (map.locate(e.s)?.n !== e.n) throw new BackupObjectMissing(key(e.s), store.locationOf(key(e.s)));
    entries.set(e.p, e);
  }

  // Big files: one upload at a time beside the packs' (they are few; each is its own multipart upload).
  let big: Promise<void> = Promise.resolve();
  let failure: unknown;
  let scratch: string | undefined;
  // Held with the size just read (a location of another size is not trusted: the file is stored again).
  const stored = (sha1: string, n: number) => map.locate(sha1)?.n === n || added.has(sha1);

  const take = async (files: AsyncIterable<IncomingFile>, source: string) => {
    for await (const f of files) {
      signal.throwIfAborted();
      if (failure) throw failure;
      if (!safePath(f.p)) throw new Error(`filestore file ${JSON.stringify(f.p)} (${source}) has a name a filestore cannot hold; nothing was stored`);
      const h = createHash('sha1');
      let got = 0;
      if (f.n <= PACK_FILE_MAX) {
        const chunks: Buffer[] = [];
        for await (const c of f.stream) {
          h.update(c as Buffer);
          got += (c as Buffer).length;
          // Memory holds what the file declared, no more (a source that sends more is broken).
          if (got > f.n) throw new Error(`filestore file ${f.p} (${source}) is longer than the ${f.n} bytes it declared; nothing was stored`);
          chunks.push(c as Buffer);
        }
        const sha1 = h.digest('hex');
        note(f, sha1, got, source);
        if (stored(sha1, got)) continue;
        added.add(sha1);
        uploadedFiles++;
        uploadedBytes += got;
        await packs.add(sha1, chunks);
      } else {
        // A big file: through a scratch file (its key is its SHA-1, known only once it is read).
        scratch ??= await mkdtemp(join(tmpdir(), 'odooops-objects-'));
        const file = join(scratch, String(entries.size));
        await pipeline(f.stream, new PassThrough({
          transform(c: Buffer, _e, cb) {
            h.update(c);
            got += c.length;
            cb(null, c);
          },
        }), createWriteStream(file), { signal });
        const sha1 = h.digest('hex');
        note(f, sha1, got, source);
        if (stored(sha1, got)) {
          await rm(file, { force: true });
          continue;
        }
        added.add(sha1);
        const bytes = got;
        await big;
        if (failure) throw failure;
        big = putOnce(store, key(sha1), () => createReadStream(file), signal)
          .then(() => {
            uploadedFiles++;
            uploadedBytes += bytes;
          })
          .catch((err) => {
            failure ??= err;
          })
          .finally(() => rm(file, { force: true }));
      }
    }
  };
  const note = (f: IncomingFile, sha1: string, got: number, source: string) => {
    const claimed = claimedSha1(f.p);
    if (claimed && claimed !== sha1) {
      mismatched++;
      if (mismatched <= 20) o.log(`filestore file ${f.p} (${source}) has the SHA-1 ${sha1}, not the one its name says: stored under its real SHA-1 (a damaged or replaced file on disk)`);
    }
    entries.set(f.p, { p: f.p, s: sha1, n: got });
  };

  let packed = 0;
  try {
    for (const { dir, files } of o.dirs ?? []) {
      const toRead: string[] = [];
      let skipped = 0;
      for (const f of files) {
        const claimed = claimedSha1(f.p);
        // Named by its SHA-1 and already stored with its size: not read again (a file whose size changed on
        // disk, truncated by a crash or a disk error, is read: its real SHA-1 decides where it goes).
        if (claimed && map.locate(claimed)?.n === f.n) {
          entries.set(f.p, { p: f.p, s: claimed, n: f.n });
          skipped++;
        } else toRead.push(f.p);
      }
      if (files.length) o.log(`filestore: ${files.length} files, ${skipped} already in the store, ${toRead.length} to read`);
      await take(readFiles(dir, toRead, signal, o.log), 'on disk');
    }
    if (o.incoming) await take(o.incoming, 'in the upload');
    await big;
    if (failure) throw failure;
    packed = await packs.finish();
  } catch (err) {
    await Promise.allSettled([big, packs.settle()]);
    throw err;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
  if (mismatched > 20) o.log(`… and ${mismatched - 20} more file(s) whose content does not match their name`);
  if (packed) o.log(`filestore: ${packed} new file(s) in ${packs.packs} pack(s) of ${(packs.bytes / 1048576).toFixed(1)} MiB`);

  const list = [...entries.values()].sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : 0));
  const indexKey = `${o.prefix}/filestore.index`;
  const index = await store.put(indexKey, Readable.from([encodeIndex(list)]), signal);
  return {
    format: 'objects',
    index: { key: indexKey, ...index },
    files: list.length,
    bytes: list.reduce((a, e) => a + e.n, 0),
    uploaded: { files: uploadedFiles, bytes: uploadedBytes },
  };
}

// ---- reading ------------------------------------------------------------------------------------

/** An object that is not what the index says: names the file (what a member reads in the run's error). */
export class FilestoreObjectDamaged extends Error {
  readonly entry: IndexEntry;
  constructor(entry: IndexEntry, detail: string) {
    super(`filestore file ${entry.p} is damaged in the backup store: ${detail}; restore another backup`);
    this.name = 'FilestoreObjectDamaged';
    this.entry = entry;
  }
}

/** Standalone files of at most this size are fetched ahead (a few at a time); bigger ones stream when their turn comes. */
const AHEAD_MAX = 1 << 20;

/**
 * The filestore of an objects backup as a tar stream (regular files, paths as in the filestore),
 * fetched from the store a few packs or objects ahead, each file checked (SHA-1 and size) before its last
 * bytes are emitted: a damaged or missing file destroys the stream with an error naming the file, and
 * nothing unverified ever reaches the tar as a complete file.
 */
export async function filestoreTar(store: BackupStore, projectId: string, f: ObjectsFilestore, signal?: AbortSignal, opts: { ahead?: number; mtime?: Date } = {}): Promise<Readable> {
  const [index, map] = await Promise.all([readIndex(store, f, signal), contentMap(store, projectId, signal)]);
  const out = tarOfObjects(store, projectId, index, signal, { ...opts, map });
  // A damaged first file fails here, before an HTTP answer's headers go out (an error the client can read).
  await out.ready;
  return out;
}

/** What is read in one go: the files of one pack, or one file stored as an object of its own. */
type Unit = { pack: string; files: { e: IndexEntry; at: Location }[] } | { pack: null; e: IndexEntry; at: Location };

/**
 * Groups a backup's files by where they are: one unit per pack (its files in pack order), then the files
 * stored on their own. A file the store does not hold is an error naming it.
 */
function plan(store: BackupStore, projectId: string, index: IndexEntry[], map: ContentMap): Unit[] {
  const byPack = new Map<string, { e: IndexEntry; at: Location }[]>();
  const own: Unit[] = [];
  for (const e of index) {
    const at = map.locate(e.s);
    if (!at) throw new FilestoreObjectDamaged(e, 'it is in no pack or object of the store');
    if (at.n !== e.n) throw new FilestoreObjectDamaged(e, `its object has ${at.n} bytes, the index says ${e.n}`);
    if (at.pack) {
      let list = byPack.get(at.key);
      if (!list) byPack.set(at.key, (list = []));
      list.push({ e, at });
    } else own.push({ pack: null, e, at });
  }
  const units: Unit[] = [];
  for (const [pack, files] of byPack) units.push({ pack, files: files.sort((x, y) => x.at.offset - y.at.offset) });
  return [...units, ...own];
}

export function tarOfObjects(store: BackupStore, projectId: string, index: IndexEntry[], signal?: AbortSignal, opts: { ahead?: number; mtime?: Date; map?: ContentMap } = {}): Readable & { ready: Promise<void> } {
  const ahead = opts.ahead ?? 4;
  const mtime = opts.mtime ?? new Date();
  const { pack, out, entry: packEntry } = tarPack();
  const fail = (err: unknown) => {
    out.destroy(err instanceof Error ? err : new Error(String(err)));
    pack.destroy();
  };
  // A reader that goes away (a client hung up) stops the fetching: every wait below races this.
  let finished = false;
  const gone = new Promise<never>((_, reject) => out.once('close', () => {
    if (!finished) reject(new Error('the reader of the filestore went away'));
  }));
  gone.catch(() => {});
  const until = <T>(p: Promise<T>): Promise<T> => Promise.race([p, gone]);
  const open = async (e: IndexEntry, key: string): Promise<Readable> => {
    try {
      return await store.get(key);
    } catch (err) {
      if (err instanceof BackupObjectMissing) throw new FilestoreObjectDamaged(e, `its object ${err.key} is missing`);
      throw err;
    }
  };
  const check = (e: IndexEntry, n: number, sha1: string) => {
    if (n !== e.n) throw new FilestoreObjectDamaged(e, `its object has ${n} bytes, the index says ${e.n}`);
    if (sha1 !== e.s) throw new FilestoreObjectDamaged(e, `its object has the SHA-1 ${sha1}, the index says ${e.s}`);
  };
  /** A pack's files, each checked: the whole pack is read before any of them is emitted. */
  const fetchPack = async (u: Extract<Unit, { pack: string }>): Promise<Buffer[]> => {
    const got = await takeFromPack(store, projectId, u.pack, u.files.map(({ e, at }) => ({ s: e.s, o: at.offset, n: e.n })), signal);
    return got.map((b, i) => {
      if (typeof b === 'string') throw new FilestoreObjectDamaged(u.files[i]!.e, b);
      return b;
    });
  };
  const fetchSmall = async (e: IndexEntry, key: string): Promise<Buffer[]> => {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of await open(e, key)) {
      n += (c as Buffer).length;
      if (n > e.n) throw new FilestoreObjectDamaged(e, `its object is longer than the ${e.n} bytes the index says`);
      chunks.push(c as Buffer);
    }
    const data = Buffer.concat(chunks);
    check(e, data.length, createHash('sha1').update(data).digest('hex'));
    return [data];
  };
  const header = (e: IndexEntry) => ({ name: e.p, size: e.n, mode: 0o644, mtime, type: 'file' as const });
  const entry = (e: IndexEntry, data: Buffer) => packEntry(header(e), data).done;
  const streamBig = async (e: IndexEntry, key: string) => {
    const src = await open(e, key);
    // (tar-stream's entry is a streamx Writable: write() takes no callback; 'drain' says when to go on.)
    const { sink, done: ended } = packEntry(header(e));
    const h = createHash('sha1');
    let n = 0;
    // The last chunk waits until the whole object is checked: a damaged file never ends as complete.
    let held: Buffer | null = null;
    const write = async (c: Buffer) => {
      if (!sink.write(c)) await until(new Promise<void>((resolve) => sink.once('drain', () => resolve())));
    };
    for await (const c of src) {
      const b = c as Buffer;
      n += b.length;
      if (n > e.n) throw new FilestoreObjectDamaged(e, `its object is longer than the ${e.n} bytes the index says`);
      h.update(b);
      if (held) await write(held);
      held = b;
    }
    check(e, n, h.digest('hex'));
    if (held) await write(held);
    (sink as unknown as { end(): void }).end();
    await until(ended);
  };

  let started!: () => void;
  let failedEarly!: (err: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    started = resolve;
    failedEarly = reject;
  });
  ready.catch(() => {});
  void (async () => {
    const units = plan(store, projectId, index, opts.map ?? (await contentMap(store, projectId, signal)));
    // Packs and small objects are fetched `ahead` at a time while the tar takes the earlier ones.
    const pending: (Promise<Buffer[]> | null)[] = [];
    let next = 0;
    const fill = () => {
      while (next < units.length && pending.length < ahead) {
        const u = units[next++]!;
        const p = u.pack !== null ? fetchPack(u) : u.e.n <= AHEAD_MAX ? fetchSmall(u.e, u.at.key) : null;
        p?.catch(() => {});
        pending.push(p);
        if (!p) break; // a big one: nothing is fetched past it until its turn
      }
    };
    for (let i = 0; i < units.length; i++) {
      signal?.throwIfAborted();
      fill();
      const p = pending.shift()!;
      const u = units[i]!;
      const data = p ? await until(p) : null;
      if (i === 0) started(); // the first pack or file checked (a big one: opened), or none
      if (u.pack !== null) for (const [j, { e }] of u.files.entries()) await until(entry(e, data![j]!));
      else if (data) await until(entry(u.e, data[0]!));
      else await streamBig(u.e, u.at.key);
    }
    finished = true;
    started();
    pack.finalize();
  })().catch((err) => {
    failedEarly(err);
    fail(err);
  });
  return Object.assign(out, { ready });
}

/**
 * The filestore part of any backup as a tar stream: the tarball as stored (older backups, checked by
 * its SHA-256 in verifyBackup), or rebuilt from the objects (checked as it streams).
 */
export async function filestoreStream(store: BackupStore, projectId: string, m: Pick<BackupManifest, 'filestore' | 'createdAt'>, signal?: AbortSignal): Promise<Readable> {
  const f = m.filestore;
  if (!f) throw new Error('the backup has no filestore');
  if (isObjects(f)) return filestoreTar(store, projectId, f, signal, { mtime: new Date(m.createdAt) });
  return store.get(f.key);
}

/**
 * Feeds a filestore tar to a tool reading it (tar --extract as the run user). When the stream fails (a
 * damaged or missing object), that is the error reported, not the tool's "unexpected end of archive".
 */
export async function feedTool(tool: ReturnType<typeof spawnTool>, source: Readable | Promise<Readable>, through: NodeJS.ReadWriteStream[], signal?: AbortSignal): Promise<void> {
  let src: Readable;
  try {
    src = await source;
  } catch (err) {
    tool.child.kill('SIGKILL');
    await tool.done.catch(() => {});
    throw err;
  }
  let own: unknown;
  src.once('error', (err) => {
    own ??= err;
  });
  try {
    await withTool(tool, pipeline([src, ...through, tool.child.stdin!], { signal }));
  } catch (err) {
    throw own ?? err;
  }
}

// ---- verifying ----------------------------------------------------------------------------------

export interface ObjectsVerification {
  /** Files whose object was read back and hashed. */
  checked: number;
  bytes: number;
  /** Files whose object is missing or not what the index says (empty: all good). */
  damaged: { p: string; s: string; problem: string }[];
}

/**
 * Reads files back and checks each one's SHA-1 and size against the index: every file, or a random
 * sample of `sample` files (what `odooops backup verify` and the weekly sampled verify do). The index
 * itself is checked first (a damaged index throws). A pack is read once for all its sampled files.
 */
export async function verifyFilestoreObjects(store: BackupStore, projectId: string, f: ObjectsFilestore, opts: { sample?: number; signal?: AbortSignal; parallel?: number } = {}): Promise<ObjectsVerification> {
  const [all, map] = await Promise.all([readIndex(store, f, opts.signal), contentMap(store, projectId, opts.signal)]);
  // Several files of a backup may share one content: each is read once.
  const byContent = new Map<string, IndexEntry>();
  for (const e of all) if (!byContent.has(e.s)) byContent.set(e.s, e);
  let index = [...byContent.values()];
  if (opts.sample !== undefined && opts.sample < index.length) {
    for (let i = index.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [index[i], index[j]] = [index[j]!, index[i]!];
    }
    index = index.slice(0, Math.max(0, opts.sample));
  }
  const out: ObjectsVerification = { checked: 0, bytes: 0, damaged: [] };
  const jobs: (() => Promise<void>)[] = [];
  const byPack = new Map<string, { e: IndexEntry; at: Location }[]>();
  for (const e of index) {
    const at = map.locate(e.s);
    if (!at) {
      out.damaged.push({ p: e.p, s: e.s, problem: 'it is in no pack or object of the store' });
      out.checked++;
    } else if (at.pack) {
      let list = byPack.get(at.key);
      if (!list) byPack.set(at.key, (list = []));
      list.push({ e, at });
    } else {
      jobs.push(async () => {
        const h = createHash('sha1');
        let n = 0;
        try {
          for await (const c of await store.get(at.key)) {
            h.update(c as Buffer);
            n += (c as Buffer).length;
          }
          const sha1 = h.digest('hex');
          if (sha1 !== e.s || n !== e.n) out.damaged.push({ p: e.p, s: e.s, problem: `SHA-1 ${sha1} (${n} bytes), the index says ${e.s} (${e.n} bytes)` });
        } catch (err) {
          if (!(err instanceof BackupObjectMissing)) throw err;
          out.damaged.push({ p: e.p, s: e.s, problem: `its object ${err.key} is missing` });
        }
        out.checked++;
        out.bytes += n;
      });
    }
  }
  for (const [key, files] of byPack) {
    jobs.push(async () => {
      const got = await takeFromPack(store, projectId, key, files.map(({ e, at }) => ({ s: e.s, o: at.offset, n: e.n })), opts.signal);
      for (const [i, { e }] of files.entries()) {
        const b = got[i]!;
        if (typeof b === 'string') out.damaged.push({ p: e.p, s: e.s, problem: `${b} (pack ${key})` });
        else out.bytes += e.n;
        out.checked++;
      }
    });
  }
  let next = 0;
  await Promise.all(Array.from({ length: opts.parallel ?? 4 }, async () => {
    while (next < jobs.length) {
      opts.signal?.throwIfAborted();
      await jobs[next++]!();
    }
  }));
  return out;
}

// ---- retention: mark and sweep ------------------------------------------------------------------

export interface SweepResult {
  /** Objects (packs and files of their own) some kept backup needs. */
  kept: number;
  deleted: number;
  freedBytes: number;
  /** Unneeded objects left because they are younger than the grace period. */
  young: number;
  /** Packs mostly freed whose still-needed files were written into new packs (then deleted: counted in `deleted`). */
  repacked?: number;
}

/** Objects younger than this are never swept (a backup of another control plane sharing the store may be writing them). */
export const SWEEP_GRACE_MS = 60 * 60 * 1000;
/** A pack whose needed files fill less than this share of it is rewritten with only those. */
const REPACK_BELOW = 0.5;

/**
 * Frees the project's filestore content that no kept backup lists. `kept` are the manifests of every
 * backup of the project recorded in this store (all environments share the content). Packs no kept
 * backup needs anything of are deleted; packs mostly freed are rewritten with only what is still needed
 * (new packs and their index first, then the old pack goes); files of their own no backup lists are
 * deleted; pack indexes whose packs are all gone go too. Called with the project's content lock held
 * exclusive, so no backup is between learning what the store holds and its record. An index (a kept
 * backup's, or a pack index) that cannot be read stops the sweep before anything is deleted.
 */
export async function sweepContent(o: {
  store: BackupStore;
  projectId: string;
  kept: BackupManifest[];
  graceMs?: number;
  now?: Date;
  log: (line: string) => void;
  signal?: AbortSignal;
}): Promise<SweepResult> {
  const { store, projectId } = o;
  const signal = o.signal ?? new AbortController().signal;
  const marked = new Set<string>();
  for (const m of o.kept) {
    if (!isObjects(m.filestore)) continue;
    let index: IndexEntry[];
    try {
      index = await readIndex(store, m.filestore, signal);
    } catch (err) {
      throw new Error(`not sweeping the filestore objects: the index of the kept backup ${m.filestore.index.key} cannot be read (${(err as Error).message}); nothing was deleted`, { cause: err });
    }
    for (const e of index) marked.add(e.s);
  }
  const map = await contentMap(store, projectId, signal);
  if (map.unreadable.length) {
    throw new Error(`not sweeping the filestore objects: the pack index ${map.unreadable[0]!.key} cannot be read (${map.unreadable[0]!.problem}); nothing was deleted`);
  }
  const grace = o.graceMs ?? SWEEP_GRACE_MS;
  const now = (o.now ?? new Date()).getTime();
  const old = (d: Date) => now - d.getTime() >= grace;
  const result: SweepResult = { kept: 0, deleted: 0, freedBytes: 0, young: 0, repacked: 0 };
  const drop = async (key: string, bytes: number) => {
    signal.throwIfAborted();
    await store.delete(key);
    result.deleted++;
    result.freedBytes += bytes;
  };

  // Packs: what each holds that a kept backup needs (any copy counts: a file in two packs keeps both,
  // unless one of them is rewritten, below). Kept whole: at least half needed, or younger than the grace
  // period; deleted: nothing needed; rewritten: the rest (their needed files go into new packs first).
  const keep = new Set<string>();
  const rewrite: { key: string; bytes: number; live: { s: string; o: number; n: number }[] }[] = [];
  const dropNow: { key: string; bytes: number }[] = [];
  for (const [key, p] of map.packs) {
    const live = p.entries.filter((e) => marked.has(e.s));
    const liveBytes = live.reduce((a, e) => a + e.n, 0);
    if (live.length && liveBytes >= REPACK_BELOW * p.bytes) keep.add(key);
    else if (!old(p.modified)) {
      keep.add(key);
      result.young++;
    } else if (!live.length) dropNow.push({ key, bytes: p.bytes });
    else rewrite.push({ key, bytes: p.bytes, live });
  }
  result.kept += keep.size - result.young;
  // Files a pack kept whole (or a file of its own) holds need no new copy.
  const heldElsewhere = new Set<string>();
  for (const key of keep) for (const e of map.packs.get(key)!.entries) heldElsewhere.add(e.s);
  for (const key of map.standalone.keys()) heldElsewhere.add(key);
  const gone = new Set<string>();
  for (const d of dropNow) {
    await drop(d.key, d.bytes);
    gone.add(d.key);
  }
  if (rewrite.length) {
    const writer = new PackWriter(store, projectId, signal);
    const copied = new Set<string>();
    try {
      for (const r of rewrite) {
        const need = r.live.filter((e) => !heldElsewhere.has(e.s) && !heldElsewhere.has(store.contentKey(projectId, e.s)) && !copied.has(e.s));
        if (!need.length) continue;
        const got = await takeFromPack(store, projectId, r.key, need, signal);
        for (const [i, e] of need.entries()) {
          const b = got[i]!;
          // A damaged file is not copied on as if it were good: the sweep stops, the old pack stays.
          if (typeof b === 'string') throw new Error(`not repacking the pack ${r.key}: the file ${e.s} in it is damaged (${b}); run odooops backup verify on the project's backups`);
          copied.add(e.s);
          await writer.add(e.s, Buffer.from(b));
        }
      }
      // The new packs and their index are in the store before any old pack goes.
      await writer.finish();
    } catch (err) {
      await writer.settle();
      throw err;
    }
    for (const r of rewrite) {
      await drop(r.key, r.bytes);
      gone.add(r.key);
      result.repacked!++;
    }
    result.kept += writer.packs;
    o.log(`filestore: ${rewrite.length} pack(s) mostly freed rewritten into ${writer.packs} (${(writer.bytes / 1048576).toFixed(1)} MiB still needed)`);
  }
  // Packs no readable index lists: a writer killed between its packs and its index.
  for (const [key, p] of map.unindexed) {
    if (!old(p.modified)) result.young++;
    else {
      await drop(key, p.bytes);
      gone.add(key);
    }
  }
  // Pack indexes none of whose packs is left (an index never lists a pack written after it was read).
  for (const [key, ix] of map.indexes) {
    const left = [...ix.packs].some((k) => !gone.has(k) && (map.packs.has(k) || map.unindexed.has(k)));
    if (!left && old(ix.modified)) await drop(key, 0);
  }
  // Many pack indexes (one per backup) merged into one: fewer reads for every reader after this.
  const merged = await mergePackIndexes(store, projectId, signal, old);
  if (merged) o.log(`filestore: ${merged} pack indexes merged into one`);
  // Files stored on their own.
  const wanted = new Set([...marked].map((s) => store.contentKey(projectId, s)));
  for (const [key, obj] of map.standalone) {
    if (wanted.has(key)) result.kept++;
    else if (!old(obj.modified)) result.young++;
    else await drop(key, obj.bytes);
  }
  return result;
}

// ---- the client side (dev pull): a tar checked against the index while it is unpacked ------------

/**
 * Unpacks a filestore tar into `dir` (which must be new and empty), checking every file against the
 * index as it is written: a path the index does not list, a size or SHA-1 that differs, a file twice,
 * or a file of the index that never came is an error (the caller removes `dir`).
 */
export async function extractVerified(tar: Readable, dir: string, index: IndexEntry[], signal?: AbortSignal): Promise<{ files: number; bytes: number }> {
  const want = new Map(index.map((e) => [e.p, e]));
  const root = resolve(dir);
  const extract = tarExtract(tar);
  const stop = () => tar.destroy(new Error('cancelled'));
  signal?.addEventListener('abort', stop, { once: true });
  let files = 0;
  let bytes = 0;
  for await (const entry of extract) {
    const h = entry.header;
    if (h.type === 'directory') {
      entry.resume();
      continue;
    }
    const p = h.name.replace(/^\.\//, '');
    const e = want.get(p);
    if ((h.type !== 'file' && h.type !== 'contiguous-file') || !e || !safePath(p)) {
      throw new Error(`the filestore sent ${p} (${h.type}), which the backup's index does not list`);
    }
    want.delete(p);
    const target = resolve(root, p);
    if (!target.startsWith(root + sep)) throw new Error(`the filestore sent ${p}, outside the filestore`);
    await mkdir(dirname(target), { recursive: true });
    const sha = createHash('sha1');
    let n = 0;
    await pipeline(Readable.from(entry), new PassThrough({
      transform(c: Buffer, _e, cb) {
        sha.update(c);
        n += c.length;
        cb(null, c);
      },
    }), createWriteStream(target, { flags: 'wx' }), { signal });
    const got = sha.digest('hex');
    if (n !== e.n || got !== e.s) throw new Error(`filestore file ${p} arrived damaged: SHA-1 ${got} (${n} bytes), the index says ${e.s} (${e.n} bytes)`);
    files++;
    bytes += n;
  }
  signal?.removeEventListener('abort', stop);
  if (want.size) throw new Error(`the filestore arrived without ${want.size} file(s) its index lists (${[...want.keys()].slice(0, 3).join(', ')}${want.size > 3 ? ', …' : ''})`);
  return { files, bytes };
}

/** Parses an index fetched by a client (dev pull) after checking its SHA-256 against the manifest. */
export function parseIndex(gz: Buffer, f: ObjectsFilestore): IndexEntry[] {
  const sha256 = createHash('sha256').update(gz).digest('hex');
  if (sha256 !== f.index.sha256) throw new Error(`the filestore index arrived damaged: its SHA-256 is ${sha256}, the manifest says ${f.index.sha256}`);
  return indexLines(gunzipSync(gz), f, 'the filestore index');
}
