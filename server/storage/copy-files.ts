// Files of a filestore on this worker copied into a new directory beside an environment's filestore,
// as the run user. A clone's kept files are production's own files: when they are on this worker they
// are copied from there (tar --create | tar --extract, the kernel's work) instead of being rebuilt from
// the store's packs, which checks every file's SHA-1 in this process and took twice the time of the
// clone's dump on a 2-core machine (bench:clone).
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { progress } from '../odoo/inspect.ts';
import { spawnTool, withTool } from '../odoo/pg-tools.ts';
import { runFs } from '../infra/run-user.ts';
import { tarOfListed, type ListedFile } from './filestore-objects.ts';

export interface FilesOf {
  dir: string;
  files: ListedFile[];
}

/**
 * Copies the listed regular files of each directory into `into` (created here; paths kept), one
 * directory after the other. A file gone since it was listed (Odoo's garbage collection) is left out,
 * as the backup of the same list leaves it out; anything else a tar says fails the copy.
 */
export async function copyFilesInto(sources: FilesOf[], into: string, o: { signal: AbortSignal; log: (line: string) => void }): Promise<{ files: number; bytes: number }> {
  await runFs.mkdir(into);
  let files = 0;
  let bytes = 0;
  for (const { dir, files: list } of sources) {
    if (list.length === 0) continue;
    // The same tar of listed files as a backup's read (readFiles); --no-same-owner: the run user owns the copy.
    const create = tarOfListed(dir, o.signal);
    const extract = spawnTool('tar', ['--extract', '--file=-', '--directory', into, '--no-same-owner'], { signal: o.signal, stdin: 'pipe' });
    const names = pipeline(Readable.from(list.map((f) => `${f.p}\0`)), create.child.stdin!, { signal: o.signal });
    const carried = pipeline(create.child.stdout!, progress(o.log, 'filestore'), extract.child.stdin!, { signal: o.signal });
    try {
      await withTool(extract, withTool(create, Promise.all([names, carried])));
    } catch (err) {
      // tar --extract of a stream cut short says only "does not look like a tar archive": the reading
      // side's own message (a directory missing, a file it cannot read) is the one to report.
      const own = await Promise.race([create.done.then(() => null, (e: Error) => e), delay(5000, null)]);
      create.child.kill('SIGKILL');
      throw own ?? err;
    }
    const warned = create.stderr().trim();
    if (warned) o.log(`files that could not be read were left out: ${warned.split('\n').slice(-3).join(' / ')}`);
    files += list.length;
    bytes += list.reduce((n, f) => n + f.n, 0);
  }
  return { files, bytes };
}
