// What OdooOps reads of an Odoo database before touching it: the server's version, that it is Odoo,
// its version and installed modules (for the backup manifest and the neutralize rules).
import { readdir, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import type pg from 'pg';

export interface OdooFacts {
  serverVersion: string;
  odooVersion: string;
  majorVersion: string;
  modules: Record<string, string>;
}

export async function inspectOdoo(db: pg.ClientBase, name: string): Promise<OdooFacts> {
  const serverVersion = (await db.query('show server_version')).rows[0].server_version as string;
  if (!(await db.query(`select to_regclass('public.ir_module_module') is not null as ok`)).rows[0].ok) {
    throw new Error(`${name} is not an Odoo database (it has no ir_module_module table)`);
  }
  const { rows } = await db.query(`select name, coalesce(latest_version, '') as v from ir_module_module where state in ('installed', 'to upgrade') order by name`);
  const modules = Object.fromEntries(rows.map((r) => [r.name as string, r.v as string]));
  if (!modules.base) throw new Error(`${name} has no installed base module: Odoo was never initialised in it`);
  const odooVersion = modules.base;
  return { serverVersion: serverVersion.split(' ')[0]!, odooVersion, majorVersion: odooVersion.split('.').slice(0, 2).join('.'), modules };
}

/** Files under a directory (recursively), or a clear error when it is missing or not a directory. */
export async function countFiles(dir: string, what = 'filestore'): Promise<number> {
  try {
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    throw new Error(`the ${what} ${dir} is missing on this worker (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); restore the directory, or an admin points the environment at another filestore root (odooops env set)`);
  }
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).length;
}

/** Passes data through and logs "<label>: N MiB" at most every `everyMs`. */
export function progress(log: (line: string) => void, label: string, everyMs = 2000): Transform {
  let bytes = 0;
  let last = Date.now();
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      const now = Date.now();
      if (now - last >= everyMs) {
        last = now;
        log(`${label}: ${(bytes / 1048576).toFixed(1)} MiB`);
      }
      cb(null, chunk);
    },
  });
}

export const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
