// The content-addressed filestore. Odoo names each file of a filestore by the SHA-1 of its content
// (<ab>/<sha1>), so a backup stores each file once per project and store, as the object
// store.contentKey(project, sha1), and lists the files it holds in an index (gzip'd JSON lines
// {"p": path, "s": sha1, "n": size}). A daily backup reads and uploads only the files whose object is not
// there yet; restores, clones, the Odoo zip and dev pull rebuild a tar from the objects, checking each
// object's SHA-1 and size as it streams; retention deletes an object only when no kept backup lists it.
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
import * as tarStream from 'tar-stream';
import type { BackupManifest, ObjectsFilestore } from '../../contract/index.ts';
import { BackupObjectMissing, hashing, type BackupStore } from './backup-store.ts';
import { spawnTool, withTool } from '../odoo/pg-tools.ts';

/** One file of a backup's filestore: its path in the filestore, its SHA-1, its size. */
export interface IndexEntry {
  p: string;
  s: string;
  n: number;
}

export type FilestorePart = NonNullable<BackupManifest['filestore']>;
export const isObjects = (f: object | null | undefined): f is ObjectsFilestore => !!f && 'format' in f && f.format === 'objects';

/** Where a project's content objects live in every store (contentKey names keys below it). */
export const contentPrefix = (projectId: string) => `${projectId}/files`;

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

/** The keys of every content object of the project in the store: one walk, not a HEAD per file. */
export async function contentObjects(store: BackupStore, projectId: string): Promise<Map<string, { bytes: number; modified: Date }>> {
  const out = new Map<string, { bytes: number; modified: Date }>();
  for await (const o of store.walk(contentPrefix(projectId))) out.set(o.key, { bytes: o.bytes, modified: o.modified });
  return out;
}

/** The files of a backup whose content object is not in the store (none: an empty list). */
export async function missingObjects(store: BackupStore, projectId: string, f: ObjectsFilestore, signal?: AbortSignal): Promise<IndexEntry[]> {
  const [index, have] = await Promise.all([readIndex(store, f, signal), contentObjects(store, projectId)]);
  return index.filter((e) => !have.has(store.contentKey(projectId, e.s)));
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

/** Files read from a directory as the run user: `tar --create` of just those, parsed as it streams. */
export async function* readFiles(dir: string, paths: string[], signal: AbortSignal, warn: (line: string) => void): AsyncGenerator<IncomingFile> {
  if (paths.length === 0) return;
  // --verbatim-files-from: a name starting with "-" is a name; --no-recursion: a path that became a
  // directory since the listing does not pull a tree in; --ignore-failed-read: a file Odoo deleted
  // since (its garbage collection) is skipped, and stays out of the index.
  const tar = spawnTool('tar', ['--create', '--file=-', '--directory', dir, '--null', '--verbatim-files-from', '--no-recursion', '--ignore-failed-read', '--files-from=-'], { signal, stdin: 'pipe' });
  const extract = tarStream.extract();
  const fed = pipeline(Readable.from(paths.map((p) => `${p}\0`)), tar.child.stdin!, { signal });
  tar.child.stdout!.on('error', (err) => extract.destroy(err));
  tar.child.stdout!.pipe(extract as unknown as NodeJS.WritableStream);
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
  /** How many uploads at once, and how many bytes of read files may wait in memory for theirs. */
  parallel?: number;
  memoryBytes?: number;
}

/** Files at most this big are read into memory and uploaded from there; bigger ones go through a scratch file. */
const IN_MEMORY = 4 << 20;

/**
 * Writes a filestore in object form: lists what the store has (one walk), reads and uploads only what
 * is new, and writes the index. Called with the project's content lock held shared (see BackupCatalog),
 * so a sweep cannot remove an object this backup counts on between the walk and the backup's record.
 */
export async function writeFilestoreObjects(o: WriteObjectsInput): Promise<ObjectsFilestore> {
  const { store, projectId, signal } = o;
  const parallel = o.parallel ?? 8;
  const memoryBytes = o.memoryBytes ?? 64 << 20;
  const have = await contentObjects(store, projectId);
  const key = (sha1: string) => store.contentKey(projectId, sha1);
  const plainSize = (stored: number) => store.plainSize?.(stored) ?? stored;
  /** Objects this backup uploaded. */
  const added = new Set<string>();
  const entries = new Map<string, IndexEntry>();
  let uploadedFiles = 0;
  let uploadedBytes = 0;
  let mismatched = 0;

  for (const e of o.known ?? []) {
    if (!have.has(key(e.s))) throw new BackupObjectMissing(key(e.s), store.locationOf(key(e.s)));
    entries.set(e.p, e);
  }

  // Uploads in flight: at most `parallel`, and at most `memoryBytes` of buffered files.
  const inFlight = new Map<string, Promise<void>>();
  const running = new Set<Promise<void>>();
  let buffered = 0;
  let failure: unknown;
  let scratch: string | undefined;
  const room = async (bytes: number) => {
    while (running.size >= parallel || (buffered + bytes > memoryBytes && running.size > 0)) await Promise.race(running);
    if (failure) throw failure;
  };
  const upload = async (sha1: string, bytes: number, body: () => Readable, memory: number, done?: () => Promise<void>) => {
    const k = key(sha1);
    if (have.has(k) || added.has(k) || inFlight.has(k)) {
      await done?.();
      return;
    }
    await room(memory);
    buffered += memory;
    const job = putObject(store, k, body, signal)
      .then(() => {
        added.add(k);
        uploadedFiles++;
        uploadedBytes += bytes;
      })
      .catch((err) => {
        failure ??= err;
      })
      .finally(async () => {
        buffered -= memory;
        running.delete(job);
        inFlight.delete(k);
        await done?.();
      });
    running.add(job);
    inFlight.set(k, job);
  };

  const take = async (files: AsyncIterable<IncomingFile>, source: string) => {
    for await (const f of files) {
      signal.throwIfAborted();
      if (failure) throw failure;
      if (!safePath(f.p)) throw new Error(`filestore file ${JSON.stringify(f.p)} (${source}) has a name a filestore cannot hold; nothing was stored`);
      const h = createHash('sha1');
      let got = 0;
      let sha1: string;
      if (f.n <= IN_MEMORY) {
        const chunks: Buffer[] = [];
        for await (const c of f.stream) {
          h.update(c as Buffer);
          got += (c as Buffer).length;
          chunks.push(c as Buffer);
        }
        sha1 = h.digest('hex');
        const data = Buffer.concat(chunks);
        note(f, sha1, got, source);
        await upload(sha1, got, () => Readable.from([data]), data.length);
      } else {
        // A big file: through a scratch file (the key is its SHA-1, known only once it is read).
        scratch ??= await mkdtemp(join(tmpdir(), 'odooops-objects-'));
        const file = join(scratch, String(entries.size));
        await pipeline(f.stream, new PassThrough({
          transform(c: Buffer, _e, cb) {
            h.update(c);
            got += c.length;
            cb(null, c);
          },
        }), createWriteStream(file), { signal });
        sha1 = h.digest('hex');
        note(f, sha1, got, source);
        await upload(sha1, got, () => createReadStream(file), 0, () => rm(file, { force: true }));
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

  try {
    for (const { dir, files } of o.dirs ?? []) {
      const toRead: string[] = [];
      let skipped = 0;
      for (const f of files) {
        const claimed = claimedSha1(f.p);
        // Named by its SHA-1 and already stored with its size: not read again (a file whose size changed on
        // disk, truncated by a crash or a disk error, is read: its real SHA-1 decides where it goes).
        const stored = claimed ? have.get(key(claimed)) : undefined;
        if (claimed && stored && plainSize(stored.bytes) === f.n) {
          entries.set(f.p, { p: f.p, s: claimed, n: f.n });
          skipped++;
        } else toRead.push(f.p);
      }
      if (files.length) o.log(`filestore: ${files.length} files, ${skipped} already in the store, ${toRead.length} to read`);
      await take(readFiles(dir, toRead, signal, o.log), 'on disk');
    }
    if (o.incoming) await take(o.incoming, 'in the upload');
    await Promise.all(running);
    if (failure) throw failure;
  } catch (err) {
    await Promise.allSettled(running);
    throw err;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
  if (mismatched > 20) o.log(`… and ${mismatched - 20} more file(s) whose content does not match their name`);

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

/**
 * One object's put. Another backup of the project (another environment, another worker) may be writing
 * the same object at this moment: its put winning is not a failure, the object is there.
 */
async function putObject(store: BackupStore, key: string, body: () => Readable, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await store.put(key, body(), signal);
      return;
    } catch (err) {
      signal.throwIfAborted();
      for (let i = 0; i < 10; i++) {
        if (await store.exists(key).catch(() => false)) return;
        await new Promise((r) => setTimeout(r, 100 * (i + 1)));
      }
      if (attempt >= 1) throw err;
    }
  }
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

/** Files of at most this size are fetched ahead (a few at a time); bigger ones stream when their turn comes. */
const AHEAD_MAX = 1 << 20;

/**
 * The filestore of an objects backup as a tar stream (regular files, paths as in the filestore),
 * fetched from the store a few objects ahead, each checked (SHA-1 and size) before its last bytes are
 * emitted: a damaged or missing object destroys the stream with an error naming the file, and nothing
 * unverified ever reaches the tar as a complete file.
 */
export async function filestoreTar(store: BackupStore, projectId: string, f: ObjectsFilestore, signal?: AbortSignal, opts: { ahead?: number; mtime?: Date } = {}): Promise<Readable> {
  const index = await readIndex(store, f, signal);
  const out = tarOfObjects(store, projectId, index, signal, opts);
  // A damaged first file fails here, before an HTTP answer's headers go out (an error the client can read).
  await out.ready;
  return out;
}

export function tarOfObjects(store: BackupStore, projectId: string, index: IndexEntry[], signal?: AbortSignal, opts: { ahead?: number; mtime?: Date } = {}): Readable & { ready: Promise<void> } {
  const ahead = opts.ahead ?? 8;
  const mtime = opts.mtime ?? new Date();
  const pack = tarStream.pack();
  const out = new PassThrough();
  (pack as unknown as Readable).pipe(out);
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
  const open = async (e: IndexEntry): Promise<Readable> => {
    try {
      return await store.get(store.contentKey(projectId, e.s));
    } catch (err) {
      if (err instanceof BackupObjectMissing) throw new FilestoreObjectDamaged(e, `its object ${err.key} is missing`);
      throw err;
    }
  };
  const fetchSmall = async (e: IndexEntry): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of await open(e)) {
      n += (c as Buffer).length;
      if (n > e.n) throw new FilestoreObjectDamaged(e, `its object is longer than the ${e.n} bytes the index says`);
      chunks.push(c as Buffer);
    }
    const data = Buffer.concat(chunks);
    check(e, data.length, createHash('sha1').update(data).digest('hex'));
    return data;
  };
  const check = (e: IndexEntry, n: number, sha1: string) => {
    if (n !== e.n) throw new FilestoreObjectDamaged(e, `its object has ${n} bytes, the index says ${e.n}`);
    if (sha1 !== e.s) throw new FilestoreObjectDamaged(e, `its object has the SHA-1 ${sha1}, the index says ${e.s}`);
  };
  const header = (e: IndexEntry) => ({ name: e.p, size: e.n, mode: 0o644, mtime, type: 'file' as const });
  const entry = (e: IndexEntry, data: Buffer) =>
    new Promise<void>((resolve, reject) => {
      pack.entry(header(e), data, (err) => (err ? reject(err) : resolve()));
    });
  const streamBig = async (e: IndexEntry) => {
    const src = await open(e);
    // (tar-stream's entry is a streamx Writable: write() takes no callback; 'drain' says when to go on.)
    let ended!: Promise<void>;
    const sink = await new Promise<ReturnType<typeof pack.entry>>((resolve) => {
      ended = new Promise<void>((done, reject) => resolve(pack.entry(header(e), (err) => (err ? reject(err) : done()))));
    });
    ended.catch(() => {});
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
    // Small objects are fetched `ahead` at a time while the tar takes the earlier ones.
    const pending: (Promise<Buffer> | null)[] = [];
    let next = 0;
    const fill = () => {
      while (next < index.length && pending.length < ahead) {
        const e = index[next++]!;
        const p = e.n <= AHEAD_MAX ? fetchSmall(e) : null;
        p?.catch(() => {});
        pending.push(p);
        if (!p) break; // a big one: nothing is fetched past it until its turn
      }
    };
    for (let i = 0; i < index.length; i++) {
      signal?.throwIfAborted();
      fill();
      const p = pending.shift()!;
      const e = index[i]!;
      const data = p ? await until(p) : null;
      if (i === 0) started(); // the first file checked (a big one: opened), or none
      if (data) await until(entry(e, data));
      else await streamBig(e);
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
export async function filestoreStream(store: BackupStore, projectId: string, m: BackupManifest, signal?: AbortSignal): Promise<Readable> {
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
 * Reads objects back and checks each one's SHA-1 and size against the index: every file, or a random
 * sample of `sample` files (what `odooops backup verify` and the weekly sampled verify do). The index
 * itself is checked first (a damaged index throws).
 */
export async function verifyFilestoreObjects(store: BackupStore, projectId: string, f: ObjectsFilestore, opts: { sample?: number; signal?: AbortSignal; parallel?: number } = {}): Promise<ObjectsVerification> {
  let index = await readIndex(store, f, opts.signal);
  // Several files of a backup may share one object: each object is read once.
  const byObject = new Map<string, IndexEntry>();
  for (const e of index) if (!byObject.has(e.s)) byObject.set(e.s, e);
  index = [...byObject.values()];
  if (opts.sample !== undefined && opts.sample < index.length) {
    for (let i = index.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [index[i], index[j]] = [index[j]!, index[i]!];
    }
    index = index.slice(0, Math.max(0, opts.sample));
  }
  const out: ObjectsVerification = { checked: 0, bytes: 0, damaged: [] };
  let next = 0;
  const one = async () => {
    while (next < index.length) {
      opts.signal?.throwIfAborted();
      const e = index[next++]!;
      const h = createHash('sha1');
      let n = 0;
      try {
        for await (const c of await store.get(store.contentKey(projectId, e.s))) {
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
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 8 }, one));
  return out;
}

// ---- retention: mark and sweep ------------------------------------------------------------------

export interface SweepResult {
  /** Objects some kept backup lists. */
  kept: number;
  deleted: number;
  freedBytes: number;
  /** Unlisted objects left because they are younger than the grace period. */
  young: number;
}

/** Objects younger than this are never swept (a backup of another control plane sharing the store may be writing them). */
export const SWEEP_GRACE_MS = 60 * 60 * 1000;

/**
 * Deletes the project's content objects that no kept backup lists. `kept` are the manifests of every
 * backup of the project recorded in this store (all environments: objects are shared across them).
 * Called with the project's content lock held exclusive, so no backup is between its listing of the
 * store and its record. An index that cannot be read stops the sweep before anything is deleted.
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
  const marked = new Set<string>();
  for (const m of o.kept) {
    if (!isObjects(m.filestore)) continue;
    let index: IndexEntry[];
    try {
      index = await readIndex(store, m.filestore, o.signal);
    } catch (err) {
      throw new Error(`not sweeping the filestore objects: the index of the kept backup ${m.filestore.index.key} cannot be read (${(err as Error).message}); nothing was deleted`, { cause: err });
    }
    for (const e of index) marked.add(store.contentKey(projectId, e.s));
  }
  const grace = o.graceMs ?? SWEEP_GRACE_MS;
  const now = (o.now ?? new Date()).getTime();
  const result: SweepResult = { kept: 0, deleted: 0, freedBytes: 0, young: 0 };
  for (const [key, obj] of await contentObjects(store, projectId)) {
    o.signal?.throwIfAborted();
    if (marked.has(key)) {
      result.kept++;
      continue;
    }
    if (now - obj.modified.getTime() < grace) {
      result.young++;
      continue;
    }
    await store.delete(key);
    result.deleted++;
    result.freedBytes += obj.bytes;
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
  const extract = tarStream.extract();
  tar.on('error', (err) => extract.destroy(err));
  tar.pipe(extract as unknown as NodeJS.WritableStream);
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
