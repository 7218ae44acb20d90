// A backup exported as Odoo's own database-manager zip (odoo/service/db.py dump_db): dump.sql first
// (plain SQL, which Odoo restores with psql), then filestore/<xx>/<sha1>..., then manifest.json in
// Odoo's shape. Streamed end to end: pg_restore turns the custom-format dump into SQL on the fly (no
// database needed), the filestore (a tarball, or rebuilt from its content objects, each checked as it
// streams) is read entry by entry, nothing is held whole in memory.
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { BackupManifest } from '../../contract/index.ts';
import type { BackupStore } from '../storage/backup-store.ts';
import { findPgTool, spawnTool } from './pg-tools.ts';
import { filestoreStream } from '../storage/filestore-objects.ts';
import { tarExtract } from '../storage/tar-streams.ts';

/** Odoo's manifest.json for a database-manager backup. */
export function odooManifest(m: BackupManifest) {
  const [major = 0, minor = 0] = m.odoo.majorVersion.split('.').map(Number);
  return {
    odoo_dump: '1',
    db_name: m.database,
    version: m.odoo.majorVersion,
    version_info: [major, minor, 0, 'final', 0, ''],
    major_version: m.odoo.majorVersion,
    pg_version: m.postgres.server.split('.').slice(0, 2).join('.'),
    modules: m.modules,
  };
}

/**
 * The zip as a stream; errors of any part destroy it (the client sees a broken download, not a bad file).
 * Callers check that every part is in the store first (missingParts): once the stream is handed out, the
 * response's headers go and a missing part can only cut the download short.
 */
export async function odooZip(store: BackupStore, m: BackupManifest, projectId: string): Promise<Readable> {
  const pgRestore = await findPgTool('pg_restore', m.postgres.server);
  // Opened now, before any header, so a dump that vanished since the check still fails as itself.
  const dump = await store.get(m.dump.key);
  const zip = new yazl.ZipFile();
  const out = new PassThrough();
  zip.outputStream.pipe(out);
  const fail = (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err)));

  void (async () => {
    // dump.sql: pg_restore of the custom dump to a script, fed from the store through stdin.
    const sql = spawnTool(pgRestore, ['--no-owner', '--file=-'], { stdin: 'pipe' });
    zip.addReadStream(sql.child.stdout!, 'dump.sql', { compress: true });
    sql.done.catch(fail);
    pipeline(dump, sql.child.stdin!).catch(fail);
    await sql.done;

    if (m.filestore) {
      const src = await filestoreStream(store, projectId, m);
      src.on('error', fail);
      const extract = tarExtract(src);
      for await (const entry of extract) {
        const name = entry.header.name.replace(/^\.\//, '');
        if (entry.header.type !== 'file' || !name) {
          entry.resume();
          continue;
        }
        // One entry at a time: the zip reads it while the tar waits (no buffering of files).
        const done = new Promise<void>((resolve, reject) => {
          entry.once('end', resolve);
          entry.once('error', reject);
        });
        zip.addReadStream(entry as unknown as NodeJS.ReadableStream, `filestore/${name}`, { compress: true, mtime: entry.header.mtime ?? new Date() });
        await done;
      }
    }
    zip.addBuffer(Buffer.from(JSON.stringify(odooManifest(m), null, 4)), 'manifest.json');
    zip.end();
  })().catch(fail);
  return out;
}
