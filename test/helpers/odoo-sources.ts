// Real Odoo source databases for the tests, made by real odoo-bin and cached: creating one takes
// 15–40 s of odoo-bin, restoring the cached dump a second or two. The cache (/var/cache/odoo/dbs) is
// keyed by the bundle's checksum and this file's recipe version, so a new bundle or recipe makes fresh
// ones. Every kind also carries "real-looking" customers, an internal user and a customer's document,
// written by Odoo itself (odoo-bin shell), as a production database would hold them.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { DebianPostgres } from './debian-postgres.ts';
import { createOdooDatabase, odooArgs, type OdooInstall } from './real-odoo.ts';

const run = promisify(execFile);
const CACHE = '/var/cache/odoo/dbs';
/** Bump when the recipe below changes (the cache key). */
const RECIPE = 3;

/**
 * - demo: base, contacts, mail with Odoo's demo data (the company's demo email, VAT and phone sit in
 *   shipped views, templates and module descriptions too);
 * - plain: base, contacts, mail without demo data;
 * - sales: account, sale, stock (and base_vat) with demo data.
 */
export type SourceKind = 'demo' | 'plain' | 'sales';

const MODULES: Record<SourceKind, { modules: string; demo: boolean }> = {
  demo: { modules: 'base,contacts,mail', demo: true },
  plain: { modules: 'base,contacts,mail', demo: false },
  sales: { modules: 'base_vat,account,sale,stock', demo: true },
};

/** The customers, users and document every source database gets (what a clone must not leak). */
export const REAL_LOOKING = {
  company: { name: 'Brasserie Lumière SA', email: 'contact@brasserie-lumiere.example', phone: '+32 2 555 01 00', vat: 'BE0428759497', street: 'Rue des Brasseurs 12' },
  customers: [
    { name: 'Annelies Verhoeven', email: 'annelies.verhoeven@klant-mail.example', phone: '+32 475 11 22 33', vat: 'BE0403170701', street: 'Kerkstraat 41' },
    { name: 'Joaquim Ferreira-Lobo', email: 'j.ferreira.lobo@cliente.example', phone: '+351 912 345 678', vat: 'PT501964843', street: 'Rua Augusta 270' },
    { name: 'Margarethe Schönholz', email: 'm.schoenholz@kunde-post.example', phone: '+49 30 90182744', vat: 'DE129273398', street: 'Lindenallee 7' },
  ],
  /** An internal user (a salesperson): a clone must let developers log in as them. */
  user: { name: 'Sofie Claessens', login: 'sofie.claessens@brasserie-lumiere.example', password: 'Sofie-prod-Pw-8472' },
  /** A business document of the first customer (ir.attachment on res.partner, in the filestore). */
  document: { name: 'contract-verhoeven.txt', content: 'Supply contract between Brasserie Lumière SA and Annelies Verhoeven, Kerkstraat 41.\n' },
} as const;

/** Python run by `odoo-bin shell`: the company's own contact data, customers, a salesperson, a document. */
function seedScript(): string {
  const d = JSON.stringify(REAL_LOOKING);
  return `
import base64, json
d = json.loads(${JSON.stringify(d)})
company = env.ref('base.main_company')
company.write({k: v for k, v in d['company'].items() if k != 'vat'})
company.partner_id.write({'vat': d['company']['vat']})
vals = [{'name': c['name'], 'email': c['email'], 'phone': c['phone'], 'vat': c['vat'], 'street': c['street']} for c in d['customers']]
if 'customer_rank' in env['res.partner']._fields:
    for v in vals: v['customer_rank'] = 1
partners = env['res.partner'].create(vals)
# A customer's photo (a 1x1 PNG): a customer's avatar is personal data.
import io
from PIL import Image
buf = io.BytesIO()
Image.new('RGB', (8, 8), (200, 30, 30)).save(buf, 'PNG')
png = base64.b64encode(buf.getvalue())
partners[1].write({'image_1920': png})
u = d['user']
env['res.users'].with_context(no_reset_password=True).create({'name': u['name'], 'login': u['login'], 'email': u['login'],
    'password': u['password'], ('groups_id' if 'groups_id' in env['res.users']._fields else 'group_ids'): [(6, 0, [env.ref('base.group_user').id])]})
env['ir.attachment'].create({'name': d['document']['name'], 'res_model': 'res.partner', 'res_id': partners[0].id,
    'raw': d['document']['content'].encode()})
env.cr.commit()
print('seeded', len(partners))
`;
}

function bundleKey(odoo: OdooInstall): string {
  const sum = join(odoo.dir, '.odoo-bundle.sha256');
  const sha = existsSync(sum) ? readFileSync(sum, 'utf8').trim().slice(0, 12) : 'unknown';
  return `${odoo.version}-${sha}-r${RECIPE}`;
}

export interface SourceTarget {
  srv: DebianPostgres;
  /** The role that owns the database (Odoo's database user). */
  role: string;
  password: string;
  db: string;
  /** Where the database's filestore goes (<filestore root>/<db>). */
  filestore: string;
}

/**
 * Makes `target.db` a real Odoo database of `kind` with its filestore: from the cache when there is one,
 * else made by odoo-bin (and cached). Returns the seconds it took and whether the cache served it.
 */
export async function realOdooSource(odoo: OdooInstall, kind: SourceKind, target: SourceTarget): Promise<{ seconds: number; cached: boolean }> {
  const t = performance.now();
  mkdirSync(CACHE, { recursive: true });
  const base = join(CACHE, `${bundleKey(odoo)}-${kind}`);
  // One maker per kind at a time (two test files may ask for the same one).
  let cached = existsSync(`${base}.dump`);
  if (!cached) {
    const release = await lock(`${base}.lock`, () => existsSync(`${base}.dump`));
    try {
      cached = existsSync(`${base}.dump`);
      if (!cached) await makeSource(odoo, kind, target, base);
    } finally {
      release();
    }
  }
  if (cached) await restoreSource(target, base);
  return { seconds: (performance.now() - t) / 1000, cached };
}

/** An exclusive lock file holding the maker's pid (a dead maker's lock is taken over). */
async function lock(path: string, done: () => boolean): Promise<() => void> {
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch {
      const pid = Number(readFileSync(path, 'utf8').trim() || 0);
      let alive = false;
      try {
        if (pid) process.kill(pid, 0);
        alive = pid > 0;
      } catch {
        alive = false;
      }
      if (!alive) rmSync(path, { force: true });
      else if (done()) return () => {};
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function makeSource(odoo: OdooInstall, kind: SourceKind, target: SourceTarget, base: string): Promise<void> {
  const { modules, demo } = MODULES[kind];
  const server = { host: target.srv.host, port: target.srv.port, user: target.role, password: target.password };
  const data = `${base}.making`;
  rmSync(data, { recursive: true, force: true });
  try {
    if (demo && odoo.version !== '17.0') {
      // 19.0 loads demo data only when asked.
      await run('/usr/bin/python3', [...odooArgs(odoo, server, data), '-d', target.db, '-i', modules, '--with-demo', '--stop-after-init', '--log-level=warn'],
        { maxBuffer: 64 << 20, timeout: 900_000 });
    } else if (demo) {
      await run('/usr/bin/python3', [...odooArgs(odoo, server, data), '-d', target.db, '-i', modules, '--stop-after-init', '--log-level=warn'],
        { maxBuffer: 64 << 20, timeout: 900_000 });
    } else {
      await createOdooDatabase(odoo, server, data, target.db, modules);
    }
    await shell(odoo, server, data, target.db, seedScript());
    // Dump and filestore into the cache (written aside, renamed into place: a killed run leaves no half file).
    const env = { ...process.env, PGPASSWORD: target.password };
    await run('pg_dump', ['--format=custom', '--no-owner', '-h', target.srv.host, '-p', String(target.srv.port), '-U', target.role, '-f', `${base}.dump.tmp`, target.db], { env });
    await run('tar', ['--create', '--file', `${base}.files.tar.tmp`, '--directory', join(data, 'filestore', target.db), '.']);
    renameSync(`${base}.files.tar.tmp`, `${base}.files.tar`);
    renameSync(`${base}.dump.tmp`, `${base}.dump`);
    mkdirSync(target.filestore, { recursive: true });
    await run('tar', ['--extract', '--file', `${base}.files.tar`, '--directory', target.filestore]);
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`making the ${kind} source on Odoo ${odoo.version} failed: ${e.message}\n${(e.stderr ?? '').split('\n').slice(-30).join('\n')}`);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
}

async function restoreSource(target: SourceTarget, base: string): Promise<void> {
  const su = await target.srv.client();
  try {
    await su.query(`create database ${pg.escapeIdentifier(target.db)} owner ${pg.escapeIdentifier(target.role)} template template0 encoding 'UTF8'`);
  } finally {
    await su.end();
  }
  const env = { ...process.env, PGPASSWORD: target.password };
  await run('pg_restore', ['--no-owner', '--exit-on-error', '--jobs', '2', '-h', target.srv.host, '-p', String(target.srv.port), '-U', target.role, '-d', target.db, `${base}.dump`], { env });
  mkdirSync(target.filestore, { recursive: true });
  await run('tar', ['--extract', '--file', `${base}.files.tar`, '--directory', target.filestore]);
}

/** Runs Python in `odoo-bin shell` on `db` (Odoo executes stdin when it is not a terminal). */
export async function shell(odoo: OdooInstall, server: { host: string; port: number; user: string; password: string }, data: string, db: string, python: string): Promise<string> {
  const args = [...odooArgs(odoo, server, data).slice(1)];
  const child = execFile('/usr/bin/python3', [odoo.odooBin, 'shell', ...args.slice(0), '-d', db, '--no-http', '--log-level=warn'], { maxBuffer: 64 << 20, timeout: 600_000 });
  let out = '';
  let errOut = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (errOut += b));
  child.stdin!.end(python);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0 || /Traceback/.test(errOut + out)) throw new Error(`odoo-bin shell failed (${code}):\n${(errOut + out).slice(-4000)}`);
  return out;
}
