// Packs: the small files of a project's filestore, stored many to an object. One object per file cost a
// request per file (a 1.5 GB filestore of 32 KiB attachments is ~49,000 PUTs on the first backup and as
// many GETs on every restore); a pack holds ~16 MiB of files back to back, so a backup and a restore cost
// a few hundred requests. Where a file is (which pack, at which offset) is told by pack indexes, apart
// from the backups: a backup's own index lists only path, SHA-1 and size, so packs can be rewritten
// (retention's repack) without touching any backup. This is restic's design (packs, index files, prune).
//
// Layout under the project's content prefix (<project>/files, where files too big for a pack stay one
// object each, named by store.contentKey):
//   packs/<aa>/<id>          the files' bytes back to back; a random 128-bit id (never written twice,
//                            so a pack is deleted only by a decision about that very pack)
//   packs/index/<sha256>     gzip'd JSON lines {"k": pack id, "s": sha1, "o": offset, "n": size}
//                            for the packs one writer wrote; named by the SHA-256 of its bytes
// A pack is written before the index that lists it, and an index before any backup that counts on it, so
// a killed writer leaves at worst packs no index lists (the sweep frees them after the grace period).
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { BackupObjectMissing, type BackupStore, type PutOptions } from './backup-store.ts';

/** Where a project's content objects live in every store (standalone files, packs and pack indexes). */
export const contentPrefix = (projectId: string) => `${projectId}/files`;
const packsPrefix = (projectId: string) => `${contentPrefix(projectId)}/packs`;
export const packKey = (projectId: string, id: string) => `${packsPrefix(projectId)}/${id.slice(0, 2)}/${id}`;
const packIndexKey = (projectId: string, sha256: string) => `${packsPrefix(projectId)}/index/${sha256}`;

/** A pack is sealed once it holds this much. */
// (Under the S3 store's 16 MiB part size with the encryption's overhead: a pack is one PUT, not a multipart upload.)
export const PACK_TARGET = 15 << 20;
/** Files up to this size go into packs; bigger ones stay one object each (they are requests enough on their own). */
export const PACK_FILE_MAX = 4 << 20;
/** No pack read is bigger than this (a pack is at most PACK_TARGET + PACK_FILE_MAX): a bigger object is refused, not read into memory. */
const PACK_READ_MAX = PACK_TARGET + PACK_FILE_MAX + (1 << 20);

const SHA1 = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const PACK_ID = /^[0-9a-f]{32}$/;
/** A pack index is small (a line per file of ~16 MiB packs); a bigger one, or one that unzips to more, is refused. */
const INDEX_READ_MAX = 32 << 20;
const INDEX_TEXT_MAX = 256 << 20;

/** Where one file's bytes are: a slice of a pack, or an object of its own. */
export interface Location {
  /** The object to read. */
  key: string;
  /** Set when the object is a pack: the file is bytes [offset, offset + n) of it. */
  pack: boolean;
  offset: number;
  n: number;
}

interface PackInfo {
  key: string;
  id: string;
  /** Plain size (what get() returns). */
  bytes: number;
  modified: Date;
  entries: { s: string; o: number; n: number }[];
}

/** What a store holds of a project's content: one walk of the prefix plus a read of every pack index. */
export interface ContentMap {
  locate(sha1: string): Location | undefined;
  /** Packs that are in the store and that a readable index lists, by key. */
  packs: Map<string, PackInfo>;
  /** Packs in the store that no readable index lists (a killed writer's), by key. */
  unindexed: Map<string, { bytes: number; modified: Date }>;
  /** Files stored as an object of their own (too big for a pack, or written before packs), by key. */
  standalone: Map<string, { bytes: number; modified: Date }>;
  /** Pack indexes, by key: which pack keys each lists, and its lines. */
  indexes: Map<string, { packs: Set<string>; modified: Date; lines: PackIndexLine[] }>;
  /** Pack indexes that could not be read (damaged, or a wrong key): the sweep deletes nothing then. */
  unreadable: { key: string; problem: string }[];
}

/**
 * Reads what the store holds of the project's content. A standalone object is found by its key
 * (store.contentKey of the SHA-1), so `locate` takes it when no pack holds the file.
 */
export async function contentMap(store: BackupStore, projectId: string, signal?: AbortSignal): Promise<ContentMap> {
  const packsAt = `${packsPrefix(projectId)}/`;
  const indexAt = `${packsPrefix(projectId)}/index/`;
  const standalone = new Map<string, { bytes: number; modified: Date }>();
  const present = new Map<string, { bytes: number; modified: Date; id: string }>();
  const indexKeys: { key: string; modified: Date; sha256: string }[] = [];
  const plain = (stored: number) => store.plainSize?.(stored) ?? stored;
  for await (const o of store.walk(contentPrefix(projectId))) {
    signal?.throwIfAborted();
    if (o.key.startsWith(indexAt)) {
      const sha256 = o.key.slice(indexAt.length);
      if (SHA256.test(sha256)) indexKeys.push({ key: o.key, modified: o.modified, sha256 });
    } else if (o.key.startsWith(packsAt)) {
      const id = o.key.slice(o.key.lastIndexOf('/') + 1);
      if (PACK_ID.test(id) && o.key === packKey(projectId, id)) present.set(o.key, { bytes: plain(o.bytes), modified: o.modified, id });
    } else standalone.set(o.key, { bytes: o.bytes, modified: o.modified });
  }
  const packs = new Map<string, PackInfo>();
  const indexes = new Map<string, { packs: Set<string>; modified: Date; lines: PackIndexLine[] }>();
  const unreadable: { key: string; problem: string }[] = [];
  const where = new Map<string, Location>();
  const read = async (ix: (typeof indexKeys)[number]) => {
    let lines: PackIndexLine[];
    try {
      lines = parsePackIndex(await readWhole(store, ix.key, INDEX_READ_MAX, signal), ix.sha256);
    } catch (err) {
      if (signal?.aborted) throw err;
      // Deleted since the walk (a sweep merged it into a new index, written before the old ones went, or
      // removed it with its last pack): the index prefix is walked again below.
      if (err instanceof BackupObjectMissing) {
        vanished = true;
        return;
      }
      unreadable.push({ key: ix.key, problem: (err as Error).message });
      return;
    }
    const listed = new Set<string>();
    for (const l of lines) {
      const key = packKey(projectId, l.k);
      listed.add(key);
      const p = present.get(key);
      // A line past the end of its pack (a pack cut short) locates nothing: the file is missing.
      if (!p || l.o + l.n > p.bytes) continue;
      let info = packs.get(key);
      if (!info) packs.set(key, (info = { key, id: l.k, bytes: p.bytes, modified: p.modified, entries: [] }));
      info.entries.push({ s: l.s, o: l.o, n: l.n });
    }
    indexes.set(ix.key, { packs: listed, modified: ix.modified, lines });
  };
  let vanished = false;
  const readAll = async (list: typeof indexKeys) => {
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < list.length) await read(list[next++]!);
    }));
  };
  await readAll(indexKeys);
  // An index gone between the walk and its read: what replaced it is found by walking the indexes again.
  for (let round = 0; vanished && round < 3; round++) {
    vanished = false;
    const seen = new Set(indexKeys.map((k) => k.key));
    const fresh: typeof indexKeys = [];
    for await (const o of store.walk(indexAt.slice(0, -1))) {
      const sha256 = o.key.slice(indexAt.length);
      if (o.key.startsWith(indexAt) && SHA256.test(sha256) && !seen.has(o.key)) fresh.push({ key: o.key, modified: o.modified, sha256 });
    }
    indexKeys.push(...fresh);
    await readAll(fresh);
  }
  // Two indexes may list one pack: its entries once. A file in two packs (two writers at once, or a repack
  // killed before it removed the old pack) is located in the newest: the same choice on every reader.
  const newestFirst = [...packs.values()].sort((a, b) => b.modified.getTime() - a.modified.getTime() || (a.key < b.key ? -1 : 1));
  for (const info of newestFirst) {
    const seen = new Set<string>();
    info.entries = info.entries.filter((e) => {
      const k = `${e.s}:${e.o}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    }).sort((a, b) => a.o - b.o);
    for (const e of info.entries) if (!where.has(e.s)) where.set(e.s, { key: info.key, pack: true, offset: e.o, n: e.n });
  }
  const unindexed = new Map<string, { bytes: number; modified: Date }>();
  for (const [key, p] of present) if (!packs.has(key) && ![...indexes.values()].some((ix) => ix.packs.has(key))) unindexed.set(key, p);
  return {
    locate(sha1) {
      const at = where.get(sha1);
      if (at) return at;
      const key = store.contentKey(projectId, sha1);
      const o = standalone.get(key);
      return o ? { key, pack: false, offset: 0, n: plain(o.bytes) } : undefined;
    },
    packs, unindexed, standalone, indexes, unreadable,
  };
}

// ---- pack indexes ---------------------------------------------------------------------------------

interface PackIndexLine {
  k: string;
  s: string;
  o: number;
  n: number;
}

function parsePackIndex(gz: Buffer, sha256: string): PackIndexLine[] {
  const got = createHash('sha256').update(gz).digest('hex');
  if (got !== sha256) throw new Error(`the pack index ${sha256} is damaged: its SHA-256 is ${got}`);
  const out: PackIndexLine[] = [];
  let text: string;
  try {
    text = gunzipSync(gz, { maxOutputLength: INDEX_TEXT_MAX }).toString('utf8');
  } catch (err) {
    throw new Error(`the pack index ${sha256} cannot be unpacked (${(err as Error).message})`);
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    const l = JSON.parse(line) as PackIndexLine;
    if (typeof l.k !== 'string' || !PACK_ID.test(l.k) || typeof l.s !== 'string' || !SHA1.test(l.s) || !Number.isSafeInteger(l.o) || l.o < 0 || !Number.isSafeInteger(l.n) || l.n < 0) {
      throw new Error(`the pack index ${sha256} has an invalid line: ${line.slice(0, 200)}`);
    }
    out.push({ k: l.k, s: l.s, o: l.o, n: l.n });
  }
  return out;
}

/** A whole object, refused when bigger than `max` (nothing of a store is read into memory unbounded). */
export async function readWhole(store: BackupStore, key: string, max: number, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  await pipeline(await store.get(key), new Writable({
    write(c: Buffer, _e, cb) {
      n += c.length;
      if (n > max) return cb(new Error(`the object ${key} is bigger than ${max} bytes; not read`));
      chunks.push(c);
      cb();
    },
  }), { signal });
  return Buffer.concat(chunks);
}

/** A pack's bytes (each file in it is checked by its SHA-1 by whoever takes it out). */
const readPack = (store: BackupStore, key: string, signal?: AbortSignal) => readWhole(store, key, PACK_READ_MAX, signal);

/** The SHA-1 of bytes [o, o + n) of a pack is `s`: else a message saying what it is instead. */
function sliceProblem(pack: Buffer, e: { s: string; o: number; n: number }): string | null {
  if (e.o + e.n > pack.length) return `its pack has ${pack.length} bytes, the file would end at ${e.o + e.n}`;
  const got = createHash('sha1').update(pack.subarray(e.o, e.o + e.n)).digest('hex');
  return got === e.s ? null : `its bytes in the pack have the SHA-1 ${got}, the index says ${e.s}`;
}

/**
 * The bytes of some files of one pack, each checked by its SHA-1: a Buffer, or what is wrong with it.
 * When the pack is gone (a sweep rewrote it since the caller's map was read: its files are in a new
 * pack), a fresh map says where they are now and they are read from there.
 */
export async function takeFromPack(store: BackupStore, projectId: string, key: string, files: { s: string; o: number; n: number }[], signal?: AbortSignal): Promise<(Buffer | string)[]> {
  let data: Buffer;
  try {
    data = await readPack(store, key, signal);
  } catch (err) {
    if (!(err instanceof BackupObjectMissing)) throw err;
    const fresh = await contentMap(store, projectId, signal);
    const read = new Map<string, Buffer | null>();
    const out: (Buffer | string)[] = [];
    for (const f of files) {
      const at = fresh.locate(f.s);
      if (!at || at.key === key || at.n !== f.n) {
        out.push(`its pack ${key} is missing`);
        continue;
      }
      if (!read.has(at.key)) {
        try {
          read.set(at.key, at.pack ? await readPack(store, at.key, signal) : await readWhole(store, at.key, PACK_FILE_MAX, signal));
        } catch (e2) {
          if (!(e2 instanceof BackupObjectMissing)) throw e2;
          read.set(at.key, null);
        }
      }
      const buf = read.get(at.key);
      const slice = { s: f.s, o: at.pack ? at.offset : 0, n: f.n };
      out.push(!buf ? `its pack ${key} is missing` : (sliceProblem(buf, slice) ?? buf.subarray(slice.o, slice.o + slice.n)));
    }
    return out;
  }
  return files.map((f) => sliceProblem(data, f) ?? data.subarray(f.o, f.o + f.n));
}

// ---- writing --------------------------------------------------------------------------------------

/**
 * Puts files into packs: add() appends a file to the open pack and seals it once it holds PACK_TARGET
 * (sealed packs are uploaded `parallel` at a time; add() waits while that many are in flight, which bounds
 * memory). finish() seals the last pack, waits for every upload, then writes one index for them.
 */
export class PackWriter {
  private open: Buffer[] = [];
  private openBytes = 0;
  private openEntries: { s: string; o: number; n: number }[] = [];
  private readonly lines: PackIndexLine[] = [];
  private readonly running = new Set<Promise<void>>();
  private failure: unknown;
  /** Pack keys this writer put. */
  readonly written = new Set<string>();
  packs = 0;
  bytes = 0;
  private readonly store: BackupStore;
  private readonly projectId: string;
  private readonly signal: AbortSignal;
  private readonly parallel: number;
  constructor(store: BackupStore, projectId: string, signal: AbortSignal, parallel = 4) {
    this.store = store;
    this.projectId = projectId;
    this.signal = signal;
    this.parallel = parallel;
  }

  /** A file's bytes, as one buffer or in the pieces they were read in (kept as they are: never joined). */
  async add(sha1: string, data: Buffer | Buffer[]): Promise<void> {
    if (this.failure) throw this.failure;
    const pieces = Array.isArray(data) ? data : [data];
    const n = pieces.reduce((a, b) => a + b.length, 0);
    this.openEntries.push({ s: sha1, o: this.openBytes, n });
    this.open.push(...pieces);
    this.openBytes += n;
    if (this.openBytes >= PACK_TARGET) await this.seal();
  }

  private async seal(): Promise<void> {
    if (!this.openEntries.length) return;
    // The pack goes out as the files' own buffers: joining them into one new 15 MiB buffer cost as much
    // CPU as encrypting it (fresh memory for every pack; bench:backup).
    const parts = this.open;
    const size = this.openBytes;
    const entries = this.openEntries;
    this.open = [];
    this.openBytes = 0;
    this.openEntries = [];
    while (this.running.size >= this.parallel) await Promise.race(this.running);
    if (this.failure) throw this.failure;
    const id = randomBytes(16).toString('hex');
    const key = packKey(this.projectId, id);
    // Not digested: a pack is checked file by file (SHA-1) and, encrypted, by its tags.
    const job = putOnce(this.store, key, () => Readable.from(parts), this.signal, { digest: false })
      .then(() => {
        this.written.add(key);
        this.packs++;
        this.bytes += size;
        for (const e of entries) this.lines.push({ k: id, ...e });
      })
      .catch((err) => {
        this.failure ??= err;
      })
      .finally(() => this.running.delete(job));
    this.running.add(job);
  }

  /** The key of the index this writer wrote (finish). */
  indexKey: string | undefined;

  /** Seals and uploads what is left, writes the index of this writer's packs; returns the files packed. */
  async finish(): Promise<number> {
    await this.seal();
    await Promise.all(this.running);
    if (this.failure) throw this.failure;
    if (!this.lines.length) return 0;
    this.indexKey = await writePackIndex(this.store, this.projectId, this.lines, this.signal);
    return this.lines.length;
  }

  /** Waits for the uploads in flight (after a failure elsewhere, before the caller cleans up). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.running);
  }
}

/** Writes a pack index listing `lines`; returns its key. */
async function writePackIndex(store: BackupStore, projectId: string, lines: PackIndexLine[], signal: AbortSignal): Promise<string> {
  const gz = gzipSync(Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join('')));
  const key = packIndexKey(projectId, createHash('sha256').update(gz).digest('hex'));
  await putOnce(store, key, () => Readable.from([gz]), signal);
  return key;
}

/** Pack indexes a sweep leaves as they are; above this many it merges them into one. */
const MERGE_INDEXES_ABOVE = 8;

/**
 * Merges the store's pack indexes into one, when there are more than MERGE_INDEXES_ABOVE (every backup,
 * copy and repack writes one, and every reader reads them all). The merged index lists every pack the
 * store holds that a readable index lists, and is written before the old indexes go, so a sweep killed
 * in between leaves two listings of the same packs, not a pack without one. Returns the indexes removed.
 * Called with the project's content lock held exclusive (retention's sweep).
 */
export async function mergePackIndexes(store: BackupStore, projectId: string, signal: AbortSignal, old: (d: Date) => boolean): Promise<number> {
  const map = await contentMap(store, projectId, signal);
  if (map.unreadable.length) return 0;
  // Only indexes past the grace period, line for line (an index just written belongs to a writer the
  // content lock may not see: it is left as it is).
  const merging = [...map.indexes].filter(([, ix]) => old(ix.modified));
  if (merging.length <= MERGE_INDEXES_ABOVE) return 0;
  const seen = new Set<string>();
  const lines: PackIndexLine[] = [];
  for (const [, ix] of merging) {
    for (const l of ix.lines) {
      const k = `${l.k}:${l.s}:${l.o}`;
      if (!seen.has(k) && map.packs.has(packKey(projectId, l.k))) {
        seen.add(k);
        lines.push(l);
      }
    }
  }
  const merged = lines.length ? await writePackIndex(store, projectId, lines, signal) : null;
  let removed = 0;
  for (const [key] of merging) {
    if (key === merged) continue;
    signal.throwIfAborted();
    await store.delete(key);
    removed++;
  }
  return removed;
}

/**
 * One object's put. Another writer (another environment, another worker) may be putting the same
 * object (content-named) at this moment: its put winning is not a failure, the object is there.
 */
export async function putOnce(store: BackupStore, key: string, body: () => Readable, signal: AbortSignal, opts?: PutOptions): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await store.put(key, body(), signal, opts);
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
