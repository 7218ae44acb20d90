// `odooops dev pull`: a developer's local Odoo database (a dev container's, a laptop's) from the newest
// masked clone of an environment, as the server made it with the clone rules. The parts are downloaded
// with their SHA-256 checked against the manifest (a filestore of content objects comes as a tar the
// server rebuilds: each file is checked against the backup's index, SHA-1 and size, as it is unpacked),
// restored beside the local database and switched in
// (the same switch as the server's restores), and web.base.url points at where this Odoo is reached.
// Runs on the Node the distribution ships (18+): no Realtime, only the HTTP API.
import { mkdtemp, readFile, rm, statfs } from 'node:fs/promises';
import { createReadStream, existsSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import * as C from '../../contract/index.ts';
import { findPgTool, spawnTool } from '../odoo/pg-tools.ts';
import { databaseExists, sideDir, sideName, switchOver } from '../odoo/switch.ts';
import { mib } from '../odoo/inspect.ts';
import { extractVerified, isObjects, parseIndex, type IndexEntry } from '../storage/filestore-objects.ts';
import { CliError, EXIT, type ApiClient } from '../../client/api-client.ts';

export interface DevPullOptions {
  api: ApiClient;
  project: string;
  /** The environment whose masked clone is pulled (production by default). */
  from: string;
  /** The local database (libpq's PGHOST/PGPORT/PGUSER say where). */
  database: string;
  filestore?: string;
  baseUrl?: string;
  /** Only when the local database does not exist yet (what a container start does). */
  ifMissing?: boolean;
  /** The Odoo major version this workspace runs (16.0 to 19.0): a clone of another is refused. */
  odooVersion?: string;
  /** When there is no clone yet: queue one into this environment, wait for it, then pull. */
  queueCloneInto?: string;
  say: (line: string) => void;
}

export interface DevPullResult {
  database: string;
  filestore: string;
  backupId: string | null;
  createdAt: string | null;
  files: number;
  baseUrl: string;
  skipped: boolean;
}

/** Where this Odoo is reached: the Codespace's forwarded port, or localhost. */
export function defaultBaseUrl(env = process.env): string {
  const port = env.ODOO_PORT ?? '8069';
  if (env.CODESPACE_NAME && env.GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN) {
    return `https://${env.CODESPACE_NAME}-${port}.${env.GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN}`;
  }
  return `http://localhost:${port}`;
}

/** Odoo's own default: <data_dir>/filestore/<db>, data_dir ~/.local/share/Odoo. */
export const defaultFilestore = (db: string) => join(homedir(), '.local', 'share', 'Odoo', 'filestore', db);

const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${Math.ceil(b / 1024)} KiB`);

async function local(database: string): Promise<pg.Client> {
  // libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD) as psql would use it; the socket by default.
  // The login name as libpq takes it (from the system, not $USER, which a container start may not set).
  const c = new pg.Client({ database, host: process.env.PGHOST ?? '/var/run/postgresql', user: process.env.PGUSER ?? userInfo().username, application_name: 'odooops-dev-pull' });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    throw new CliError(`cannot connect to the local PostgreSQL (${process.env.PGHOST ?? '/var/run/postgresql'}${process.env.PGPORT ? `:${process.env.PGPORT}` : ''}): ${(err as Error).message}`,
      EXIT.unreachable, 'Start it (in a dev container: /usr/local/share/odooops/start.sh does) or set PGHOST/PGPORT/PGUSER.');
  }
  return c;
}

async function latestClone(o: DevPullOptions): Promise<C.MaskedClone> {
  const path = `/api/projects/${encodeURIComponent(o.project)}/environments/${encodeURIComponent(o.from)}/masked-clone`;
  try {
    return await o.api.get(path, C.MaskedClone);
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'no_clone' || !o.queueCloneInto) throw err;
  }
  o.say(`no masked clone of ${o.from} yet: queueing a clone into ${o.queueCloneInto} and waiting for it`);
  const { data: run } = await o.api.request('POST', `/api/projects/${encodeURIComponent(o.project)}/environments/${encodeURIComponent(o.queueCloneInto)}/runs`,
    C.Run, { kind: 'clone', params: { from: o.from } });
  let after = 0;
  for (;;) {
    const page = await o.api.get(`/api/runs/${run.id}/logs?after=${after}&limit=5000`, C.LogPage);
    for (const l of page.lines) o.say(`  [clone] ${l.line}`);
    after = page.nextAfter;
    if ((C.TERMINAL_STATUSES as readonly string[]).includes(page.status)) {
      if (page.status !== 'succeeded') {
        const done = await o.api.get(`/api/runs/${run.id}`, C.Run);
        throw new CliError(`the clone run ${run.id} ${page.status}: ${done.error ?? 'no error recorded'}`, EXIT.runFailed, `See \`odooops run logs ${run.id}\`.`);
      }
      return o.api.get(path, C.MaskedClone);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Free bytes where a path is (or would be created). */
async function freeBytes(path: string): Promise<{ dir: string; free: number }> {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const s = await statfs(dir);
  return { dir, free: Number(s.bavail) * Number(s.bsize) };
}

export async function devPull(o: DevPullOptions): Promise<DevPullResult> {
  const filestore = o.filestore ?? defaultFilestore(o.database);
  const baseUrl = o.baseUrl ?? defaultBaseUrl();
  const admin = await local('postgres');
  try {
    if (o.ifMissing && (await databaseExists(admin, o.database))) {
      o.say(`${o.database} exists already: keeping it (run \`odooops dev pull ${o.project}\` for a fresh copy)`);
      return { database: o.database, filestore, backupId: null, createdAt: null, files: 0, baseUrl, skipped: true };
    }
    const clone = await latestClone(o);
    const m = clone.manifest;
    // The server only serves masked clones; refuse anything else all the same.
    if (clone.backup.kind !== 'clone' || m.clone?.masked !== true) {
      throw new CliError(`backup ${clone.backup.id} is not a masked clone; OdooOps never restores unmasked data into a dev environment`, EXIT.rejected);
    }
    if (o.odooVersion && m.odoo.majorVersion && m.odoo.majorVersion !== o.odooVersion) {
      throw new CliError(`the clone of ${m.clone.source} is Odoo ${m.odoo.majorVersion}, but this workspace is set up for Odoo ${o.odooVersion}`, EXIT.rejected,
        `Set the feature's odooVersion (or --odoo-version) to ${m.odoo.majorVersion}; nothing was changed.`);
    }
    o.say(`masked clone of ${m.clone.source} from ${m.createdAt} (backup ${clone.backup.id}, Odoo ${m.odoo.version ?? '?'}, dump ${gib(m.dump.bytes)}${m.filestore ? `, filestore ${m.filestore.files} files ${gib(m.filestore.bytes)}` : ''})`);

    // Disk: the parts while they download, the restored database (a few times its compressed dump),
    // the unpacked filestore.
    const work = await mkdtemp(join(process.env.ODOOOPS_PULL_TMP ?? tmpdir(), 'odooops-pull-'));
    try {
      const partsBytes = m.dump.bytes + (m.filestore?.bytes ?? 0);
      const need = new Map<string, { free: number; bytes: number }>();
      const want = async (path: string, bytes: number) => {
        const { dir, free } = await freeBytes(path);
        const e = need.get(dir) ?? { free, bytes: 0 };
        e.bytes += bytes;
        need.set(dir, e);
      };
      await want(work, partsBytes);
      await want(filestore, m.filestore?.bytes ?? 0);
      const dataDir = (await admin.query(`select current_setting('data_directory', true) as d`).catch(() => ({ rows: [{ d: null }] }))).rows[0].d as string | null;
      if (dataDir && existsSync(dataDir)) await want(dataDir, m.dump.bytes * 5);
      for (const [dir, { free, bytes }] of need) {
        if (free < bytes) {
          throw new CliError(`not enough disk space in ${dir}: the pull needs about ${gib(bytes)}, ${gib(free)} are free`, EXIT.rejected,
            'Free some space (old databases, docker images) or use a machine with a bigger disk; nothing was changed.');
        }
      }

      const progress = (label: string, total: number) => {
        let last = 0;
        return (bytes: number) => {
          if (Date.now() - last < 2000 && bytes < total) return;
          last = Date.now();
          o.say(`downloading ${label}: ${mib(bytes)} of ${mib(total)}`);
        };
      };
      const dumpFile = join(work, 'dump.pgc');
      await o.api.download(clone.parts.dump, dumpFile, progress('database', m.dump.bytes), { sha256: m.dump.sha256 });
      let tarFile: string | null = null;
      let index: IndexEntry[] | null = null;
      if (clone.parts.filestore && m.filestore) {
        tarFile = join(work, 'filestore.tar');
        if (isObjects(m.filestore)) {
          if (!clone.parts.index) throw new CliError('the server offers this clone\'s filestore without its index, so its files cannot be checked', EXIT.server, 'Upgrade the OdooOps server; nothing was changed.');
          const indexFile = join(work, 'filestore.index');
          await o.api.download(clone.parts.index, indexFile, () => {}, { sha256: m.filestore.index.sha256 });
          index = parseIndex(await readFile(indexFile), m.filestore);
          await o.api.download(clone.parts.filestore, tarFile, progress('filestore', m.filestore.bytes));
        } else {
          await o.api.download(clone.parts.filestore, tarFile, progress('filestore', m.filestore.bytes), { sha256: m.filestore.sha256 });
        }
      }
      o.say(index ? 'checksums match the manifest (each filestore file is checked against the index as it is unpacked)' : 'checksums match the manifest');

      // Beside the current database and filestore, then switched in (a failure leaves them as they were).
      const runId = process.pid;
      const newDb = sideName(o.database, 'new', runId);
      const newFs = tarFile ? sideDir(filestore, 'new', runId) : null;
      const server = (await admin.query('show server_version')).rows[0].server_version as string;
      const pgRestore = await findPgTool('pg_restore', server);
      await admin.query(`create database ${pg.escapeIdentifier(newDb)} template template0 encoding 'UTF8'`);
      try {
        o.say(`restoring into ${newDb}`);
        const conn = [...(process.env.PGHOST ? [] : ['--host', '/var/run/postgresql'])];
        await spawnTool(pgRestore, ['--no-owner', '--no-privileges', '--exit-on-error', '--jobs', '2', ...conn, '--dbname', newDb, dumpFile], {}).done;
        if (tarFile && newFs) {
          await (await import('node:fs/promises')).mkdir(newFs, { recursive: true });
          if (index) {
            const got = await extractVerified(createReadStream(tarFile), newFs, index);
            o.say(`filestore: ${got.files} files (${mib(got.bytes)}), each one's SHA-1 and size as the index says`);
          } else await spawnTool('tar', ['--extract', '--file', tarFile, '--directory', newFs, '--no-same-owner'], {}).done;
        }
        const db = await local(newDb);
        try {
          await db.query(`update ir_config_parameter set value = $1 where key = 'web.base.url'`, [baseUrl]);
          await db.query(`insert into ir_config_parameter (key, value) select 'web.base.url', $1 where not exists (select 1 from ir_config_parameter where key = 'web.base.url')`, [baseUrl]);
        } finally {
          await db.end();
        }
        await switchOver(admin, { db: o.database, newDb, filestore: newFs ? filestore : null, newFilestore: newFs, runId }, async (l) => o.say(l));
      } catch (err) {
        const { dropDatabase } = await import('../odoo/switch.ts');
        await dropDatabase(admin, newDb).catch(() => {});
        if (newFs) await rm(newFs, { recursive: true, force: true });
        throw err instanceof CliError ? err : new CliError(`the pull failed, ${o.database} was not changed: ${(err as Error).message}`, EXIT.server);
      }
      o.say(`${o.database} is a masked copy of ${m.clone.source} (${m.createdAt}); web.base.url = ${baseUrl}`);
      return { database: o.database, filestore, backupId: clone.backup.id, createdAt: m.createdAt, files: m.filestore?.files ?? 0, baseUrl, skipped: false };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  } finally {
    await admin.end().catch(() => {});
  }
}
