// Reading an uploaded database export, as untrusted input: an Odoo database-manager zip (dump.sql,
// filestore/, manifest.json: what Odoo's /web/database/backup and Odoo.sh give), a pg_dump -Fc file, or
// a tar bundle of a pg_dump -Fc file and a filestore tarball (what `odooops env import --filestore`
// sends). Entries are read one at a time as streams; every name is checked (no absolute paths, no `..`,
// nothing outside filestore/), only regular files are taken (no symlinks, hard links or devices), the
// zip's CRC-32 is checked, and the expanded size is capped: a zip bomb stops at the operator's limit.
import { open } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { createGunzip } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { newestPgTool, spawnTool } from './pg-tools.ts';
import { odooFromScript, runScript, UnsafeSql, type RunScriptOptions, type ScriptFacts } from './sql-script.ts';
import { tarExtract, tarPack } from '../storage/tar-streams.ts';

export type UploadFormat = 'odoo-zip' | 'pg-dump' | 'bundle';

/** Where an upload lives in the backup store, under its environment (a run reaches only its own). */
export const uploadPrefix = (projectId: string, envId: string, upload: string) => `imports/${projectId}/${envId}/${upload}`;

/** What the API recorded beside an upload (upload.json). */
export interface UploadMeta {
  upload: string;
  sha256: string;
  bytes: number;
  format: UploadFormat;
  maxExpandedBytes: number;
  odooVersion: string;
  majorVersion: string;
  uploadedBy: string;
  uploadedAt: string;
}

/** The upload is not a usable export: the message says why and what to send instead. */
export class BadImport extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadImport';
  }
}

export interface FilestoreFile {
  /** Relative to the filestore (ab/abcdef...), checked. */
  path: string;
  size: number;
  stream: Readable;
}

export interface ImportLimits {
  /** Bytes the SQL script and the filestore may expand to, together. */
  maxExpandedBytes: number;
}

export interface ImportFacts {
  format: UploadFormat;
  odooVersion: string;
  majorVersion: string;
  modules: Record<string, string>;
  /** The database's name in the export's manifest, when it has one. */
  sourceDatabase: string | null;
  filestoreFiles: number;
  filestoreBytes: number;
  tables: number;
  rows: number;
}

const SAFE_SEGMENT = /^[A-Za-z0-9._-]{1,255}$/;

/** A relative path whose every segment is a plain name (no `..`, no absolute, no backslash). */
function safeRelative(path: string): boolean {
  const parts = path.split('/');
  return parts.length > 0 && parts.every((p) => SAFE_SEGMENT.test(p) && p !== '.' && p !== '..');
}

/** Counts bytes through a stream and fails it past the limit (the caller shares one budget). */
function budgeted(budget: { left: number; limit: number }, what: string): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      budget.left -= chunk.length;
      if (budget.left < 0) {
        cb(new BadImport(`the import expands to more than ${budget.limit} bytes (at ${what}); the operator's limit (--max-import-size) decides; nothing was imported`));
        return;
      }
      cb(null, chunk);
    },
  });
}

export async function detectFormat(path: string): Promise<UploadFormat> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'odoo-zip';
    if (bytesRead >= 5 && head.subarray(0, 5).toString('latin1') === 'PGDMP') return 'pg-dump';
    if (bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'bundle';
  } finally {
    await fh.close();
  }
  throw new BadImport('the file is not an Odoo backup zip, a pg_dump -Fc file or an OdooOps import bundle; export the database from Odoo (Database manager → Backup, zip with filestore), Odoo.sh (Backups → Download), or with pg_dump --format=custom');
}

/** An opened upload: its SQL script and its filestore files, each readable as often as needed. */
export interface ImportSource {
  format: UploadFormat;
  sourceDatabase: string | null;
  /** The SQL that makes the database, as a stream of UTF-8 text; `done` settles when its producer ends. */
  sql(budget: { left: number; limit: number }, signal?: AbortSignal): Promise<{ stream: Readable; done: Promise<void> }>;
  /** The filestore's files, one at a time (each stream must be read or drained before the next). */
  files(budget: { left: number; limit: number }): AsyncGenerator<FilestoreFile>;
  close(): Promise<void>;
}

// ---- Odoo zip ------------------------------------------------------------------------------------

function zipEntryProblem(e: Entry): string | null {
  const name = e.fileName;
  const mode = (e.externalFileAttributes >>> 16) & 0o170000;
  if (mode === 0o120000) return `${name} is a symbolic link`;
  if (mode !== 0 && mode !== 0o100000 && mode !== 0o040000) return `${name} is not a regular file`;
  if (e.isEncrypted()) return `${name} is encrypted`;
  if (name === 'dump.sql' || name === 'manifest.json') return null;
  if (name === 'filestore/' ) return null;
  if (!name.startsWith('filestore/')) return `${name} is outside dump.sql, manifest.json and filestore/`;
  const rel = name.slice('filestore/'.length).replace(/\/$/, '');
  if (!safeRelative(rel)) return `${name} is not a plain path inside filestore/`;
  return null;
}

/** A zip entry's data with its CRC-32 checked at the end (yauzl does not check it). */
async function zipStream(zip: ZipFile, e: Entry): Promise<Readable> {
  const raw = await new Promise<Readable>((resolve, reject) => zip.openReadStream(e, (err: Error | null, s?: Readable) => (err ? reject(err) : resolve(s!))));
  let crc = 0;
  const check = new Transform({
    transform(chunk: Buffer, _e, cb) {
      // Looked up when used: the CLI bundle, which also runs on the devcontainer's older Node, must load
      // without zlib.crc32 (Node ≥ 20.15); imports only run on the server's Node.
      crc = zlib.crc32(chunk, crc);
      cb(null, chunk);
    },
    flush(cb) {
      cb(crc >>> 0 === e.crc32 >>> 0 ? null : new BadImport(`${e.fileName} in the zip is corrupt (CRC-32 mismatch); download the backup again`));
    },
  });
  raw.on('error', (err) => check.destroy(new BadImport(`${e.fileName} in the zip is corrupt: ${err.message}`)));
  return raw.pipe(check);
}

async function openZip(path: string, limits: ImportLimits): Promise<ImportSource> {
  let zip: ZipFile;
  try {
    zip = await new Promise<ZipFile>((resolve, reject) =>
      yauzl.open(path, { lazyEntries: true, autoClose: false, strictFileNames: true, validateEntrySizes: true }, (err, z) => (err ? reject(err) : resolve(z!))));
  } catch (err) {
    throw new BadImport(`the zip is corrupt or cut short (${(err as Error).message}); download the backup again`);
  }
  const entries: Entry[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (e: Entry) => {
        entries.push(e);
        zip.readEntry();
      });
      zip.on('end', resolve);
      zip.on('error', reject);
      zip.readEntry();
    });
  } catch (err) {
    zip.close();
    throw new BadImport(`the zip is corrupt or has an unsafe entry (${(err as Error).message}); nothing was imported`);
  }
  const fail = (m: string): never => {
    zip.close();
    throw new BadImport(m);
  };
  const seen = new Set<string>();
  let expanded = 0;
  for (const e of entries) {
    const problem = zipEntryProblem(e);
    if (problem) fail(`the zip is refused: ${problem}; an Odoo backup holds only dump.sql, manifest.json and filestore/<files>`);
    if (seen.has(e.fileName)) fail(`the zip is refused: ${e.fileName} appears twice`);
    seen.add(e.fileName);
    expanded += e.uncompressedSize;
  }
  if (expanded > limits.maxExpandedBytes) fail(`the zip expands to ${expanded} bytes, more than the operator's limit of ${limits.maxExpandedBytes}; nothing was imported`);
  const dump = entries.find((e) => e.fileName === 'dump.sql');
  if (!dump) fail('the zip has no dump.sql: it is not an Odoo database backup (Odoo\'s database manager makes one with "Backup Format: zip")');
  let sourceDatabase: string | null = null;
  const manifestEntry = entries.find((e) => e.fileName === 'manifest.json');
  if (manifestEntry) {
    if (manifestEntry.uncompressedSize > 16 * 1024 * 1024) fail('the zip\'s manifest.json is too large');
    const chunks: Buffer[] = [];
    for await (const c of await zipStream(zip, manifestEntry)) chunks.push(c as Buffer);
    try {
      const m = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { db_name?: unknown };
      sourceDatabase = typeof m.db_name === 'string' ? m.db_name : null;
    } catch {
      fail('the zip\'s manifest.json is not JSON: the backup is corrupt');
    }
  }
  return {
    format: 'odoo-zip',
    sourceDatabase,
    async sql(budget) {
      const s = await zipStream(zip, dump!);
      const out = s.pipe(budgeted(budget, 'dump.sql'));
      s.on('error', (err) => out.destroy(err));
      return { stream: out, done: Promise.resolve() };
    },
    async *files(budget) {
      for (const e of entries) {
        if (!e.fileName.startsWith('filestore/') || e.fileName.endsWith('/')) continue;
        const s = await zipStream(zip, e);
        const out = s.pipe(budgeted(budget, e.fileName));
        s.on('error', (err) => out.destroy(err));
        yield { path: e.fileName.slice('filestore/'.length), size: e.uncompressedSize, stream: out };
      }
    },
    async close() {
      zip.close();
    },
  };
}

// ---- pg_dump -Fc, alone or in a bundle with a filestore tarball -------------------------------------

/** A pg_dump -Fc stream as SQL text: pg_restore with no database, privileges and owners left out. */
async function restoreToSql(dump: Readable, budget: { left: number; limit: number }, signal?: AbortSignal): Promise<{ stream: Readable; done: Promise<void> }> {
  const tool = await newestPgTool('pg_restore');
  const p = spawnTool(tool, ['--no-owner', '--no-privileges', '--no-publications', '--no-subscriptions', '--no-security-labels', '--no-tablespaces', '--file=-'], { stdin: 'pipe', signal });
  const fed = pipeline(dump, p.child.stdin!).catch(() => {});
  const out = p.child.stdout!.pipe(budgeted(budget, 'the dump'));
  const done = Promise.all([p.done, fed]).then(() => {}).catch((err: Error) => {
    throw new BadImport(`the pg_dump file is corrupt or of a newer PostgreSQL than this worker's pg_restore ${tool.version} (${err.message}); nothing was imported`);
  });
  done.catch((err) => out.destroy(err));
  return { stream: out, done };
}

/** A tar stream's regular files; links, devices and unsafe names are refused. */
async function* tarFiles(src: Readable, what: string, name: (raw: string) => string | null): AsyncGenerator<{ path: string; size: number; stream: Readable }> {
  const extract = tarExtract(src);
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const raw = h.name.replace(/^(\.\/)+/, '');
      if (h.type === 'directory' || !raw || raw === '.') {
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') throw new BadImport(`the ${what} is refused: ${h.name} is a ${h.type}, not a regular file (links are not followed); nothing was imported`);
      const path = name(raw);
      if (path === null) throw new BadImport(`the ${what} is refused: ${h.name} is not a plain relative path (no absolute paths, no ..); nothing was imported`);
      // tar-stream's entries are streamx streams: Node's pipeline/finished need a Node stream.
      const stream = Readable.from(entry as AsyncIterable<Buffer>, { objectMode: false });
      yield { path, size: h.size ?? 0, stream };
      stream.resume();
      await finished(stream).catch(() => {});
    }
  } catch (err) {
    if (err instanceof BadImport) throw err;
    throw new BadImport(`the ${what} is corrupt or cut short (${(err as Error).message}); nothing was imported`);
  }
}

/** A filestore tarball's entry name as a path in the filestore: ./ab/…, filestore/ab/…, <db>/ab/…. */
function filestoreName(raw: string): string | null {
  // Absolute names are refused, not read as "<db>/…" with an empty first part (which put /etc/x at etc/x).
  if (raw.startsWith('/')) return null;
  let p = raw.replace(/\/+$/, '');
  const first = p.split('/')[0]!;
  if (p.includes('/') && !/^[0-9a-f]{2}$/.test(first) && first !== 'checklist') p = p.slice(first.length + 1);
  return safeRelative(p) ? p : null;
}

async function openBundle(path: string, format: 'pg-dump' | 'bundle'): Promise<ImportSource> {
  const read = async () => (await open(path, 'r')).createReadStream();
  if (format === 'pg-dump') {
    return {
      format, sourceDatabase: null,
      sql: async (budget, signal) => restoreToSql(await read(), budget, signal),
      async *files() {},
      async close() {},
    };
  }
  // The bundle: dump.pgc and an optional filestore.tar / filestore.tar.gz, nothing else.
  const entryStream = async (want: (n: string) => boolean): Promise<{ name: string; stream: Readable; rest: AsyncGenerator } | null> => {
    const it = tarFiles(await read(), 'bundle', (n) => (['dump.pgc', 'filestore.tar', 'filestore.tar.gz', 'filestore.tgz'].includes(n) ? n : null));
    // next() by hand: leaving a for-await would close the generator, and with it the entry being read.
    for (let r = await it.next(); !r.done; r = await it.next()) {
      if (want(r.value.path)) return { name: r.value.path, stream: r.value.stream, rest: it };
      r.value.stream.resume();
    }
    return null;
  };
  return {
    format, sourceDatabase: null,
    async sql(budget, signal) {
      const e = await entryStream((n) => n === 'dump.pgc');
      if (!e) throw new BadImport('the bundle has no dump.pgc (send a pg_dump -Fc file, with --filestore for its filestore tarball)');
      const r = await restoreToSql(e.stream, budget, signal);
      // Then the rest is drained, so the bundle's own checks (unsafe entries) still run.
      const rest = finished(e.stream).then(async () => { for await (const x of e.rest) (x as FilestoreFile).stream.resume(); });
      return { stream: r.stream, done: Promise.all([r.done, rest]).then(() => {}) };
    },
    async *files(budget) {
      const e = await entryStream((n) => n.startsWith('filestore.'));
      if (!e) return;
      let src: Readable = e.stream;
      if (e.name !== 'filestore.tar') {
        const gunzip = createGunzip();
        src.pipe(gunzip);
        src = gunzip;
      }
      const counted = src.pipe(budgeted(budget, 'the filestore tarball'));
      src.on('error', (err) => counted.destroy(new BadImport(`the filestore tarball is corrupt (${err.message}); nothing was imported`)));
      for await (const f of tarFiles(counted, 'filestore tarball', filestoreName)) yield f;
      for await (const x of e.rest) (x as FilestoreFile).stream.resume();
    },
    async close() {},
  };
}

export async function openImport(path: string, limits: ImportLimits): Promise<ImportSource> {
  const format = await detectFormat(path);
  return format === 'odoo-zip' ? openZip(path, limits) : openBundle(path, format);
}

/** Reads the SQL through the checker (and into `client` when given): the facts, or UnsafeSql/BadImport. */
export async function readSql(src: ImportSource, limits: ImportLimits, opts: RunScriptOptions & { budget?: { left: number; limit: number } } = {}): Promise<ScriptFacts> {
  const budget = opts.budget ?? { left: limits.maxExpandedBytes, limit: limits.maxExpandedBytes };
  const { stream, done } = await src.sql(budget, opts.signal);
  stream.setEncoding('utf8');
  const [facts] = await Promise.all([
    runScript(stream, opts).catch(async (err) => {
      stream.destroy();
      // A producer that failed (a corrupt dump) explains a cut-short script better than the parser.
      const own = await done.then(() => null, (e: Error) => e);
      throw own ?? err;
    }),
    done,
  ]);
  return facts;
}

/** Checks a whole upload without a database: what it is, which Odoo, how many files. */
export async function inspectImport(path: string, limits: ImportLimits, signal?: AbortSignal): Promise<ImportFacts> {
  const src = await openImport(path, limits);
  try {
    const budget = { left: limits.maxExpandedBytes, limit: limits.maxExpandedBytes };
    const facts = await readSql(src, limits, { budget, signal });
    const odoo = odooFromScript(facts);
    let files = 0;
    let bytes = 0;
    for await (const f of src.files(budget)) {
      for await (const c of f.stream) bytes += (c as Buffer).length;
      files++;
    }
    return {
      format: src.format, ...odoo, sourceDatabase: src.sourceDatabase, filestoreFiles: files, filestoreBytes: bytes,
      tables: facts.tables.size, rows: [...facts.rows.values()].reduce((a, b) => a + b, 0),
    };
  } finally {
    await src.close();
  }
}

/** The filestore as the tarball a backup keeps (./<path> entries), streamed. */
export function filestoreTarball(src: ImportSource, limits: ImportLimits): { stream: Readable; files: Promise<number> } {
  const { pack, out, entry } = tarPack();
  const budget = { left: limits.maxExpandedBytes, limit: limits.maxExpandedBytes };
  const files = (async () => {
    let n = 0;
    for await (const f of src.files(budget)) {
      const { sink, done } = entry({ name: `./${f.path}`, size: f.size, mode: 0o644, type: 'file' });
      await new Promise<void>((resolve, reject) => {
        done.then(resolve, reject);
        f.stream.on('error', reject);
        f.stream.pipe(sink);
      });
      n++;
    }
    pack.finalize();
    return n;
  })();
  files.catch((err) => out.destroy(err));
  return { stream: out, files };
}

export { UnsafeSql };
