// Restoring a backup's `pg_dump -Fc` file with parallel jobs, reading the dump from its store once and
// checking its SHA-256 on that read (the restore's verify leaves the dump to this module).
// pg_restore --jobs needs a file it can seek in: a store with a local path the run user may read gives
// one as it is (hashed through the store before pg_restore opens it); any other store (S3, an encrypted
// store) is downloaded into the worker's scratch directory, its SHA-256 checked as it is written, and
// removed afterwards. Where the scratch filesystem has no room for it, the dump streams into a single
// pg_restore instead, checked as it streams (a mismatch fails the run, whose target is a side database
// nobody uses yet). A pg_restore runs whatever SQL the archive holds, as the environment's role: so no
// byte reaches it unchecked, except from a store that authenticates what it returns (an encrypted store
// hands on only chunks whose tag verified); from any other store the streamed way hashes the dump first.
// The dump is checked, and pg_restore not yet started, when openDump returns: the caller creates the
// side database only then, so a corrupt dump leaves the database server untouched.
import { availableParallelism, tmpdir } from 'node:os';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashing, type BackupStore, type Digested } from '../storage/backup-store.ts';
import { runUserCanRead, shareWithRunUser } from '../infra/run-user.ts';
import { mib } from './inspect.ts';
import { spawnTool, withTool, type PgTool } from './pg-tools.ts';
import { removeStaleScratch } from './switch.ts';

/** pg_restore's jobs: one per core of the worker, at least 2 (one restores while another builds an index), at most 8. */
export const restoreJobs = (): number => Math.min(8, Math.max(2, availableParallelism()));

// Left free beside the download: a full disk would stop the worker's other runs too.
const HEADROOM = 256 << 20;

export interface DumpRestoreInput {
  store: BackupStore;
  /**
   * The other stores that hold the backup (its copies), asked for only when the dump in `store` fails
   * its check: a damaged primary with a good copy still restores, as verification used to promise.
   */
  others?: () => Promise<BackupStore[]>;
  /** How errors name the backup ("backup 42"). */
  what?: string;
  /** The dump's key and what the backup recorded of it. */
  key: string;
  bytes: number;
  sha256: string;
  pgRestore: PgTool;
  /** pg_restore's arguments (connection, options), without a file or --jobs. */
  args: string[];
  env: NodeJS.ProcessEnv;
  log: (line: string) => Promise<void>;
  signal: AbortSignal;
  /**
   * The run's scratch: named `<prefix><runId>-…` under root (default: the system's temporary
   * directory), so what a killed worker left is found by the next run (isActive: false).
   */
  scratch: { prefix: string; runId: number; isActive: (runId: number) => Promise<boolean>; root?: string };
  /** Jobs (default restoreJobs()). */
  jobs?: number;
}

export type DumpRestoreWay = 'store file' | 'scratch copy' | 'stream';

/** A dump checked and ready for pg_restore (streamed: checked as restore() reads it). */
export interface OpenedDump {
  way: DumpRestoreWay;
  jobs: number;
  /** Runs pg_restore; streamed, a dump that turns out not to be the recorded one fails here, after pg_restore ran. */
  restore(): Promise<void>;
  /** Removes the scratch copy; may be called more than once. */
  close(): Promise<void>;
}

/** openDump, restore, close: for callers that created the target database beforehand. */
export async function restoreDump(o: DumpRestoreInput): Promise<{ way: DumpRestoreWay; jobs: number }> {
  const dump = await openDump(o);
  try {
    await dump.restore();
    return { way: dump.way, jobs: dump.jobs };
  } finally {
    await dump.close();
  }
}

/**
 * Reads the dump, checking it, and gets it ready for pg_restore, which runs only in restore() (a
 * streamed dump from an encrypted store is checked there, as it streams). When the dump in a store
 * fails its check and another store holds the backup, says so and reads it from that one.
 */
export async function openDump(o: DumpRestoreInput): Promise<OpenedDump> {
  const jobs = o.jobs ?? restoreJobs();
  const stores = [o.store];
  let askedOthers = !o.others;
  let firstErr: unknown;
  for (let i = 0; ; i++) {
    try {
      return await openIn(o, stores[i]!, jobs);
    } catch (err) {
      if (o.signal.aborted) throw err;
      firstErr ??= err;
      if (i + 1 >= stores.length && !askedOthers) {
        askedOthers = true;
        for (const s of await o.others!().catch(() => [] as BackupStore[])) if (!stores.some((x) => x.name === s.name)) stores.push(s);
      }
      const next = stores[i + 1];
      if (!next) throw firstErr;
      await o.log(`${o.what ?? 'the backup'} in the store "${stores[i]!.name}" fails verification (${(err as Error).message}); the store "${next.name}" holds it too: reading the dump from that one`);
    }
  }
}

async function openIn(o: DumpRestoreInput, store: BackupStore, jobs: number): Promise<OpenedDump> {
  const none = async () => {};
  const path = store.localPath(o.key);
  // pg_restore runs as the run user: it opens the file itself only where that user may read it.
  if (path && (await runUserCanRead(path))) {
    await readChecked(o, store);
    await o.log(`the dump (${mib(o.bytes)}) checked in the store's file (sha256 ${o.sha256.slice(0, 12)}…): pg_restore with ${jobs} jobs from it`);
    return { way: 'store file', jobs, close: none, restore: () => spawnTool(o.pgRestore, [...o.args, '--jobs', String(jobs), path], { env: o.env, signal: o.signal }).done.then(() => {}) };
  }
  // Its path stays out of the log (members read it); the operator knows TMPDIR.
  const root = o.scratch.root ?? tmpdir();
  const stale = await removeStaleScratch(o.scratch.prefix, o.scratch, root);
  if (stale.length) await o.log(`removed what an interrupted earlier run left: ${stale.join(', ')}`);
  const need = o.bytes + HEADROOM;
  const free = await freeBytes(root);
  if (free !== null && free < need) {
    await o.log(`the worker's scratch directory (TMPDIR) has ${mib(free)} free; a copy of the dump for parallel jobs needs ${mib(need)} (${mib(o.bytes)} and ${mib(HEADROOM)} left free): restoring with one job, streamed from the store and checked as it streams (free space there, or point TMPDIR at a larger disk, for parallel jobs)`);
    return streamedFrom(o, store);
  }
  // Written by the server into a directory the run user may read but not change (no file of theirs can
  // be swapped in between the check and pg_restore).
  const dir = await mkdtemp(join(root, `${o.scratch.prefix}${o.scratch.runId}-`));
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    shareWithRunUser(dir);
    const file = join(dir, 'dump.pgc');
    await o.log(`downloading the dump (${mib(o.bytes)}) into the worker's scratch directory (TMPDIR, ${free === null ? 'free space unknown' : `${mib(free)} free`}) for pg_restore with ${jobs} jobs; removed afterwards`);
    const got = await download(o, store, file);
    if (got === 'ok') shareWithRunUser(file);
    if (got === 'no room') {
      await o.log(`the worker's scratch directory (TMPDIR) filled up during the download: restoring with one job, streamed from the store and checked as it streams`);
      await close();
      return streamedFrom(o, store);
    }
    if (!(await runUserCanRead(file))) {
      // A scratch directory under a parent the run user cannot enter (TMPDIR set to a private directory):
      // the server reads the checked copy to pg_restore's stdin, rather than the store again.
      await o.log(`the run user cannot read the copy in the worker's scratch directory (TMPDIR should be a directory every user may enter, as /tmp is): restoring with one job, streamed from the checked copy`);
      return {
        way: 'stream', jobs: 1, close, restore: async () => {
          const p = spawnTool(o.pgRestore, o.args, { env: o.env, signal: o.signal, stdin: 'pipe' });
          await withTool(p, pipeline(createReadStream(file), p.child.stdin!, { signal: o.signal }));
        },
      };
    }
    await o.log(`downloaded and checked (sha256 ${o.sha256.slice(0, 12)}…): pg_restore with ${jobs} jobs`);
    return { way: 'scratch copy', jobs, close, restore: () => spawnTool(o.pgRestore, [...o.args, '--jobs', String(jobs), file], { env: o.env, signal: o.signal }).done.then(() => {}) };
  } catch (err) {
    await close();
    throw err;
  }
}

async function streamedFrom(o: DumpRestoreInput, store: BackupStore): Promise<OpenedDump> {
  if (!store.authenticates) {
    // A changed object would be SQL pg_restore runs before the digest at the end could refuse it.
    await o.log(`the store "${store.name}" is not encrypted, so nothing but the checksum vouches for the dump: it is read once to check it before pg_restore runs it (twice in all)`);
    await readChecked(o, store);
  }
  return { way: 'stream', jobs: 1, close: async () => {}, restore: () => streamed(o, store) };
}

/** Counts and hashes what streams through; fails at its end when it is not what the backup recorded. */
function checked(o: DumpRestoreInput) {
  const verdict = ({ digest, bytes }: Digested) => digest === o.sha256 && bytes === o.bytes ? null
    : new Error(`${o.what ?? 'the backup'} is corrupt: the database dump has sha256 ${digest} (${bytes} bytes), the backup recorded ${o.sha256} (${o.bytes} bytes); nothing was changed; restore another backup (odooops backup verify checks every part of one)`);
  const t = hashing({ check: verdict });
  return Object.assign(t, { verdict: () => verdict(t.digested()) });
}

/** Reads the dump through its check without keeping it. */
async function readChecked(o: DumpRestoreInput, store: BackupStore): Promise<void> {
  await pipeline(await store.get(o.key), checked(o), new Writable({ write: (_c, _e, cb) => cb() }), { signal: o.signal });
}

async function download(o: DumpRestoreInput, store: BackupStore, file: string): Promise<'ok' | 'no room'> {
  // O_EXCL: a file planted at the name is never written through.
  const fh = await open(file, 'wx', 0o640);
  try {
    await pipeline(await store.get(o.key), checked(o), fh.createWriteStream(), { signal: o.signal });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return 'no room';
    throw err;
  } finally {
    await fh.close().catch(() => {});
  }
  return 'ok';
}

async function streamed(o: DumpRestoreInput, store: BackupStore): Promise<void> {
  const t = checked(o);
  const p = spawnTool(o.pgRestore, o.args, { env: o.env, signal: o.signal, stdin: 'pipe' });
  await withTool(p, store.get(o.key).then((src) => pipeline(src, t, p.child.stdin!, { signal: o.signal })));
  // Also when pg_restore stopped reading before the end (withTool lets a tool that exited 0 do so): a
  // dump not read to its end was not checked.
  const bad = t.verdict();
  if (bad) throw bad;
}

async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}
