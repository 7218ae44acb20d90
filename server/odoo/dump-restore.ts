// Restoring a backup's `pg_dump -Fc` file with parallel jobs. pg_restore --jobs needs a file it can
// seek in: a store with a local path the run user may read gives one as it is; any other store (S3,
// an encrypted store) is first downloaded into the worker's scratch directory, its SHA-256 checked as it
// is written, and removed afterwards. Where the scratch filesystem has no room for it, the dump streams
// into a single pg_restore instead, checked as it streams (a mismatch fails the run, whose target is a
// side database nobody uses yet).
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtemp, open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { hashing, type BackupStore } from '../storage/backup-store.ts';
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

export async function restoreDump(o: DumpRestoreInput): Promise<{ way: DumpRestoreWay; jobs: number }> {
  const jobs = o.jobs ?? restoreJobs();
  const path = o.store.localPath(o.key);
  // pg_restore runs as the run user: it opens the file itself only where that user may read it.
  if (path && (await runUserCanRead(path))) {
    await o.log(`pg_restore with ${jobs} jobs from the store's file`);
    await spawnTool(o.pgRestore, [...o.args, '--jobs', String(jobs), path], { env: o.env, signal: o.signal }).done;
    return { way: 'store file', jobs };
  }
  // Its path stays out of the log (members read it); the operator knows TMPDIR.
  const root = o.scratch.root ?? tmpdir();
  const stale = await removeStaleScratch(o.scratch.prefix, o.scratch, root);
  if (stale.length) await o.log(`removed what an interrupted earlier run left: ${stale.join(', ')}`);
  const need = o.bytes + HEADROOM;
  const free = await freeBytes(root);
  if (free !== null && free < need) {
    await o.log(`the worker's scratch directory (TMPDIR) has ${mib(free)} free; a copy of the dump for parallel jobs needs ${mib(need)} (${mib(o.bytes)} and ${mib(HEADROOM)} left free): restoring with one job, streamed from the store and checked as it streams (free space there, or point TMPDIR at a larger disk, for parallel jobs)`);
    await streamed(o);
    return { way: 'stream', jobs: 1 };
  }
  // Written by the server into a directory the run user may read but not change (no file of theirs can
  // be swapped in between the check and pg_restore).
  const dir = await mkdtemp(join(root, `${o.scratch.prefix}${o.scratch.runId}-`));
  try {
    shareWithRunUser(dir);
    const file = join(dir, 'dump.pgc');
    await o.log(`downloading the dump (${mib(o.bytes)}) into the worker's scratch directory (TMPDIR, ${free === null ? 'free space unknown' : `${mib(free)} free`}) for pg_restore with ${jobs} jobs; removed afterwards`);
    const got = await download(o, file);
    if (got === 'ok') shareWithRunUser(file);
    if (got === 'no room') {
      await o.log(`the worker's scratch directory (TMPDIR) filled up during the download: restoring with one job, streamed from the store and checked as it streams`);
      await rm(dir, { recursive: true, force: true });
      await streamed(o);
      return { way: 'stream', jobs: 1 };
    }
    if (!(await runUserCanRead(file))) {
      // A scratch directory under a parent the run user cannot enter (TMPDIR set to a private directory).
      await o.log(`the run user cannot read the copy in the worker's scratch directory (TMPDIR should be a directory every user may enter, as /tmp is): restoring with one job, streamed from the store and checked as it streams`);
      await rm(dir, { recursive: true, force: true });
      await streamed(o);
      return { way: 'stream', jobs: 1 };
    }
    await o.log(`downloaded and checked (sha256 ${o.sha256.slice(0, 12)}…): pg_restore with ${jobs} jobs`);
    await spawnTool(o.pgRestore, [...o.args, '--jobs', String(jobs), file], { env: o.env, signal: o.signal }).done;
    return { way: 'scratch copy', jobs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Counts and hashes what streams through, and says whether it is what the backup recorded. */
function checked(o: DumpRestoreInput) {
  const t = hashing();
  const verdict = () => {
    const { sha256, bytes } = t.result();
    if (sha256 !== o.sha256 || bytes !== o.bytes) {
      return new Error(`the dump read from the store (${o.key}) is not the one the backup recorded: sha256 ${sha256} (${bytes} bytes), recorded ${o.sha256} (${o.bytes} bytes); it changed in the store since it was verified, nothing was switched in; verify the backup again (odooops backup verify) or restore another one`);
    }
    return null;
  };
  return { t, verdict };
}

async function download(o: DumpRestoreInput, file: string): Promise<'ok' | 'no room'> {
  const c = checked(o);
  // O_EXCL: a file planted at the name is never written through.
  const fh = await open(file, 'wx', 0o640);
  try {
    await pipeline(await o.store.get(o.key), c.t, fh.createWriteStream(), { signal: o.signal });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return 'no room';
    throw err;
  } finally {
    await fh.close().catch(() => {});
  }
  const bad = c.verdict();
  if (bad) throw bad;
  return 'ok';
}

async function streamed(o: DumpRestoreInput): Promise<void> {
  const c = checked(o);
  const p = spawnTool(o.pgRestore, o.args, { env: o.env, signal: o.signal, stdin: 'pipe' });
  await withTool(p, o.store.get(o.key).then((src) => pipeline(src, c.t, p.child.stdin!, { signal: o.signal })));
  const bad = c.verdict();
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
