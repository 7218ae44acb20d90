// clone: a fresh, neutralized, masked copy of production (or of a production backup) into this
// staging or development environment. The copy is made on the production database server
// (<db>_odooops_mask_<run>) with personal data masked as the rows stream in (masked-copy.ts); it is
// neutralized, scrubbed and verified there, and dropped at the end, also on failure. A backup is first
// restored as it is beside it (<db>_odooops_src_<run>), also only there. What leaves the server is a
// masked dump, stored as a 'clone' backup (which dev containers pull) and restored here with the
// restore run's switch.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { CLONE_BACKUP_NOT_PRODUCTION, cloneParams, cloneTargetRefusal } from '../../../contract/run-params.ts';
import { defineExecutor, type EnvironmentRow } from '../executor.ts';
import { backupPrefix, writeBackup } from '../../odoo/backup-writer.ts';
import { inspectOdoo, mib } from '../../odoo/inspect.ts';
import { parseMaskProfile, projectMaskProfile, type Column } from '../../odoo/mask.ts';
import { tightenProfile, weakenedHint, weakenedMessage, withFloors } from '../../odoo/mask-policy.ts';
import { setCloneLogins, type CloneLogins } from '../../odoo/clone-login.ts';
import { generateOdooPassword } from '../../odoo/odoo-password.ts';
import { STRONG_SECRET_LENGTH } from '../redact.ts';
import { COPY_SESSIONS, maskedCopy } from '../../odoo/masked-copy.ts';
import { neutralize, scrubSecrets } from '../../odoo/neutralize.ts';
import { catchMailBeforeSwitch } from '../../odoo/catch-mail.ts';
import { placeholderColumns, writePlaceholders } from '../../odoo/placeholders.ts';
import { connectionArgs, findPgTool, pgEnv, spawnTool, withTool, type PgTarget } from '../../odoo/pg-tools.ts';
import { runFs, runTempDir } from '../../infra/run-user.ts';
import { createDatabaseError, dropDatabase, maintenance, removeLeftovers, removeStaleScratch, sideDir, sideName } from '../../odoo/switch.ts';
import { checkNeutralized, findPii } from '../../odoo/verify.ts';
import { restoreBackup, unpackFilestore, verifyBackup } from './restore.ts';
import { openDump } from '../../odoo/dump-restore.ts';
import { isObjects, listFiles, readIndex, type IndexEntry, type ListedFile } from '../../storage/filestore-objects.ts';
import { replicateContents } from '../../storage/replicate.ts';
import { copyFilesInto } from '../../storage/copy-files.ts';

/**
 * Attachments a copy keeps by default: what Odoo regenerates or needs to boot (views, assets, menu
 * icons, flags), the companies' logos and favicons (res.company fields; Odoo 17 and 19 store the logo
 * as the company partner's image_* attachments) and the avatars of internal users (their partners'
 * image_*), and product images (not personal data; a shop without them is hard to test), so the clone
 * looks like production. Customers' images and documents stay behind.
 */
const KEEP_ASSETS = (tables: Map<string, Column[]>) => {
  const has = (t: string, c: string) => tables.get(t)?.some((x) => x.name === c) ?? false;
  // Fields' attachments name their field (res_field) from Odoo 12 on; a database without it keeps none of them.
  const fields = has('ir_attachment', 'res_field');
  const ownPartners = !fields ? [] : [
    ...(has('res_company', 'partner_id') ? ['select partner_id from res_company where partner_id is not null'] : []),
    ...(has('res_users', 'partner_id') && has('res_users', 'share') ? ['select partner_id from res_users where not share and partner_id is not null'] : []),
  ];
  return `(res_model is null or res_model in ('ir.ui.view', 'ir.ui.menu', 'ir.module.module', 'res.lang', 'res.company') or url like '/web/%'
    or mimetype in ('text/css', 'application/javascript', 'text/javascript', 'text/scss')${ownPartners.length ? `
    or (res_model = 'res.partner' and res_field like 'image\\_%' and res_id in (${ownPartners.join(' union ')}))` : ''}
    ${fields ? `
    or (res_model in ('product.template', 'product.product', 'product.image', 'product.category') and res_field like 'image\\_%')` : ''})`;
};

export { cloneParams };

export const cloneExecutor = defineExecutor({
  kind: 'clone',
  description: 'Clone production into this environment: neutralized, secrets scrubbed, personal data masked',
  params: cloneParams,
  async execute({ run, environment: env, params, log, signal, infra, backups, otherEnvironment, runIsActive, project, redact, recordCloneLogin, issueMailLogin }) {
    const refused = cloneTargetRefusal(env);
    if (refused) throw new Error(refused);
    const profile = await cloneProfile(await project(), params.profile, log);
    // Resolved first: a secret the worker cannot read fails the run before anything is copied.
    const login = clonePassword(await project(), infra, redact);
    const fromBackup = params.backup ? await backups.get(params.backup) : undefined;
    const source: EnvironmentRow = fromBackup
      ? await otherEnvironmentById(otherEnvironment, fromBackup.environment_id, env)
      : await otherEnvironment(params.from);
    if (source.id === env.id) throw new Error(`cannot clone ${env.name} into itself`);
    const src = infra.database(source);
    const target = infra.database(env);
    const sourceFilestore = infra.filestore(source);
    const targetFilestore = infra.filestore(env);
    const maskDb = sideName(source.db_name, 'mask', run.id);
    await log(`clone of ${source.name} (${source.stage}${fromBackup ? `, backup ${fromBackup.id} of ${fromBackup.created_at.toISOString()}` : ''}) into ${env.name} (${env.stage})`);
    // The backup's dump is checked on the one read that restores it (openDump below).
    const fromStore = fromBackup ? await verifyBackup(fromBackup, backups, (l) => log(l), signal, { dump: false }) : undefined;

    const admin = await maintenance(src);
    const onAbort = () => void admin.end().catch(() => {});
    signal.addEventListener('abort', onAbort, { once: true });
    const made = new Set<string>();
    // The clone's filestore being unpacked beside the environment's early (see onFilestore below), and where.
    let unpacking: Promise<void> | undefined;
    let early: string | null = null;
    const where = `the server ${source.db_server}`;
    const started = Date.now();
    try {
      const server = (await admin.query('show server_version')).rows[0].server_version as string;
      const pgDump = await findPgTool('pg_dump', server);
      const pgRestore = await findPgTool('pg_restore', server);
      const removed = await removeLeftovers(admin, source.db_name, null, ['mask', 'src'], { runId: run.id, isActive: runIsActive });
      removed.push(...(await removeStaleScratch(`odooops-clone-${env.id}-`, { runId: run.id, isActive: runIsActive })));
      if (removed.length) await log(`removed what an interrupted earlier run left: ${removed.join(', ')}`);
      const create = async (name: string) => {
        await admin.query(`create database ${pg.escapeIdentifier(name)} template template0 encoding 'UTF8'`)
          .catch(async (err) => { throw await createDatabaseError(admin, name, err, src.user ?? 'the default user'); });
        made.add(name);
      };
      let from: PgTarget = src;
      if (fromBackup) {
        // A backup is a file: it is restored as it is, on the production server only, and masked from there.
        const srcDb = sideName(source.db_name, 'src', run.id);
        await log(`the backup is restored unmasked only on the production database server (${where}), as ${srcDb}, and dropped once the masked copy is made`);
        const into = { ...src, database: srcDb };
        const { dump: part } = fromBackup.manifest;
        // Checked before the database is created: a corrupt dump leaves the production server as it was.
        const dump = await openDump({
          store: fromStore!, others: async () => (await backups.storesOf(fromBackup)).filter((s) => s.name !== fromStore!.name), what: `backup ${fromBackup.id}`,
          key: part.key, bytes: part.bytes, sha256: part.sha256, pgRestore, env: pgEnv(into), log: (l) => log(l), signal,
          args: ['--no-owner', '--no-privileges', '--exit-on-error', ...connectionArgs(into), '--dbname', srcDb],
          scratch: { prefix: `odooops-clone-src-${env.id}-`, runId: run.id, isActive: runIsActive },
        });
        try {
          await create(srcDb);
          from = into;
          await dump.restore();
        } finally {
          await dump.close();
        }
      }
      await log(`the copy is made on the production database server (${where}), as ${maskDb}: personal data is masked as it is copied, secrets are scrubbed and everything is verified there before anything leaves; it is dropped at the end`);
      await create(maskDb);
      const into: PgTarget = { ...src, database: maskDb };
      const copy = await maskedCopy({
        from, into, pgDump, pgRestore, profile, parallel: COPY_SESSIONS, log: (l) => log(l), signal,
        keepFiles: params.filestore === 'all' ? null : params.filestore === 'none' ? 'false' : KEEP_ASSETS,
        standIn: params.filestore === 'placeholders' ? { columns: placeholderColumns(), label: 'point to placeholder files' } : undefined,
      });
      await log(`copied ${copy.tables} tables (${copy.rows} rows, ${mib(copy.bytes)}) into ${maskDb} in ${((Date.now() - started) / 1000).toFixed(1)} s, every row checked against the sample`);
      if (from !== src) {
        await dropDatabase(admin, from.database);
        made.delete(from.database);
        await log(`the unmasked copy ${from.database} was dropped`);
      }

      // Neutralize and scrub on the copy, then verify.
      const connectCopy = async () => {
        const c = new pg.Client({ ...into, application_name: 'odooops' });
        c.on('error', () => {});
        await c.connect();
        return c;
      };
      const db = await connectCopy();
      const closeDb = () => void db.end().catch(() => {});
      signal.addEventListener('abort', closeDb, { once: true });
      const keptFiles = copy.keptFiles;
      let facts;
      let logins: CloneLogins | null = null;
      try {
        facts = await inspectOdoo(db, maskDb);
        await db.query('begin');
        await neutralize(db, Object.keys(facts.modules), (l) => log(l));
        await scrubSecrets(db, baseUrlOf(env.url), (l) => log(l));
        const problems = await checkNeutralized(db);
        // No production password can log in to the copy: its admin and internal users get the clone's.
        const masksLogins = !!profile.columns['res_users.login'] && profile.columns['res_users.login']!.strategy !== 'keep';
        logins = await setCloneLogins(db, login.password, { loginsMasked: masksLogins }, problems);
        await db.query('commit');
        if (copy.hits.size) {
          // The stream found sampled values: name the columns (never the values).
          const findings = await findPii(db, copy.sample, undefined, 1, new Set(copy.hits.keys()));
          for (const f of findings) problems.push(`${f.rows} row(s) of ${f.table}.${f.column} still hold a source ${f.kind}`);
          for (const [table, n] of copy.hits) if (!findings.some((f) => f.table === table)) problems.push(`${n} source value(s) in the rows of ${table}`);
        }
        if (problems.length) throw new Error(`the masked copy failed verification, nothing was cloned: ${problems.join('; ')}`);
        await log(`verified: no sampled email, phone, VAT, person name or street line of the source in any copied row (${mib(copy.bytes)} scanned); no production password hash; only the autovacuum cron and the dummy mail server are active`);
      } catch (err) {
        await db.query('rollback').catch(() => {});
        throw err;
      } finally {
        signal.removeEventListener('abort', closeDb);
        closeDb();
      }

      // The masked copy leaves the production server as a clone backup of this environment.
      // Named for the environment (a UUID: unique even among control planes sharing a machine) and the run, so a killed attempt's is found.
      const listDir = await runTempDir(`odooops-clone-${env.id}-${run.id}-`);
      let written;
      // On the same server as the same role (the usual staging), the masked copy itself becomes the new
      // database, renamed; elsewhere the stored clone is restored.
      const sameServer = source.db_server === env.db_server;
      // There, the filestore is unpacked beside the environment's as soon as it is stored, while the dump
      // is still being written (the rename has to wait for the dump: it reads the copy). What an earlier
      // attempt of this run left beside it goes first (restoreBackup would remove the directory otherwise).
      early = sameServer && targetFilestore && params.filestore !== 'none' ? sideDir(targetFilestore, 'new', run.id) : null;
      if (early) {
        const t = await maintenance(target);
        try {
          const removed = await removeLeftovers(t, env.db_name, targetFilestore, ['new', 'old'], { runId: run.id, isActive: runIsActive, say: (l) => log(l) });
          if (removed.length) await log(`removed what an interrupted earlier run left: ${removed.join(', ')}`);
        } finally {
          await t.end().catch(() => {});
        }
      }
      // Files copied in from another store are in no recorded backup until the clone's row is written:
      // the content lock (shared) keeps the project's sweep off them until then.
      let holding: (() => Promise<void>) | null = null;
      let copying: Promise<void> | undefined;
      try {
        // The clone's filestore is content objects like a backup's: the kept files of production are
        // mostly in the project's store already (its backups put them there), so little is uploaded.
        const kept = new Set(keptFiles);
        const dirs: { dir: string; files: ListedFile[] }[] = [];
        let known: IndexEntry[] = [];
        let hasFiles = !!sourceFilestore;
        const stored = fromBackup?.manifest.filestore;
        if (fromBackup && params.filestore !== 'none') {
          hasFiles = !!stored;
          if (isObjects(stored)) {
            // From an objects backup, the kept files' objects are taken as they are: nothing is read.
            known = (await readIndex(fromStore!, stored, signal)).filter((e) => kept.has(e.p));
            // A backup in another store than the project's (the project moved, or its primary lost it and
            // the copy verified): the kept files' objects are copied over first, each checked by its SHA-1.
            if (fromStore!.name !== backups.store.name) {
              holding = await backups.holdContent();
              await replicateContents(fromStore!, backups.store, env.project_id, known, signal);
            }
          } else if (stored && keptFiles.length) {
            // From a tarball backup, only the kept files are taken out of it (on this worker, as the run user).
            const list = join(listDir, 'files');
            await writeFile(list, keptFiles.map((f) => `./${f}\0`).join(''));
            const filesDir = join(listDir, 'filestore');
            await runFs.mkdir(filesDir);
            const x = spawnTool('tar', ['--extract', '--file=-', '--directory', filesDir, '--no-same-owner', '--null', `--files-from=${list}`], { signal, stdin: 'pipe' });
            await withTool(x, fromStore!.get(stored.key).then((st) => pipeline(st, x.child.stdin!, { signal })));
            dirs.push({ dir: filesDir, files: await listFiles(filesDir, signal) });
          }
        } else if (sourceFilestore && params.filestore !== 'none' && keptFiles.length) {
          // Kept files the filestore lacks (an attachment whose file is gone) are left out, as tar's --ignore-failed-read did.
          dirs.push({ dir: sourceFilestore, files: (await listFiles(sourceFilestore, signal)).filter((f) => kept.has(f.p)) });
        }
        // Placeholder files, for business documents that stay behind, travel beside the kept files.
        const standIns = params.filestore === 'placeholders' && copy.leftFiles > 0 ? join(listDir, 'placeholders') : null;
        if (standIns) {
          await writePlaceholders(standIns);
          dirs.push({ dir: standIns, files: await listFiles(standIns, signal) });
        }
        // Kept files that are on this worker (production's filestore, or a tarball backup's, taken out
        // above) are copied beside the environment's filestore from there at once, while the clone is
        // stored; files in the store only (an objects backup's) are unpacked from it once stored.
        if (early && known.length === 0 && dirs.length) {
          const into = early;
          const count = dirs.reduce((n, d) => n + d.files.length, 0);
          await log(`copying the filestore's ${count} kept files beside the current one`);
          unpacking = copying = copyFilesInto(dirs, into, { signal, log: (l) => void log(l) })
            .then(({ files, bytes }) => log(`filestore copied beside the current one (${files} files, ${mib(bytes)})`));
          // Awaited by restoreBackup, or below when the backup fails.
          unpacking.catch(() => {});
        }
        written = await writeBackup({
          backups, projectId: env.project_id, prefix: backupPrefix(env.project_id, env.id, run.id, '-clone'), kind: 'clone', database: env.db_name, facts, pgDumpVersion: pgDump.version,
          // Light compression: the clone's dump is made while the environment waits for it (zlib level 1
          // takes about half the time of pg_dump's default for a slightly bigger file), and clones are
          // short-lived (the last 3 are kept).
          dump: () => spawnTool(pgDump, ['--format=custom', '--compress=1', '--no-owner', ...connectionArgs(into), '--dbname', maskDb], { env: pgEnv(into), signal }),
          filestore: (hasFiles || standIns) && params.filestore !== 'none' ? { dirs, known } : null,
          clone: { source: source.name, sourceStage: source.stage, masked: true, filestore: params.filestore },
          onFilestore: early && !unpacking ? (part) => {
            unpacking = unpackFilestore(backups.store, env.project_id, { filestore: part, createdAt: new Date().toISOString() }, early!, log, signal);
            // Awaited by restoreBackup, or below when the backup fails.
            unpacking.catch(() => {});
          } : undefined,
          log: (l) => log(l), signal,
        });
      } finally {
        await holding?.();
        // The copy may be reading files taken out into the scratch directory (a tarball backup's, placeholders).
        await copying?.catch(() => {});
        // The server's own scratch (root may own what it wrote there): removed by the server.
        await rm(listDir, { recursive: true, force: true });
      }
      await log(`masked clone stored as backup ${written.id} (${mib(written.bytes)})`);
      const clone = await backups.get(written.id);
      await restoreBackup({
        runId: run.id, env, target, filestore: targetFilestore, where: infra.describe(env), backup: clone, backups, log, signal,
        adopt: sameServer ? maskDb : undefined, unpacking, isActive: runIsActive,
        // The catcher login goes into the environment's database only, never into the stored clone
        // (developers pull that one: their copies keep Odoo's dummy server).
        beforeSwitch: catchMailBeforeSwitch({ env, target, issue: issueMailLogin, log: (l) => log(l), onlyIfNeutralized: false }),
      });
      unpacking = undefined;
      if (sameServer) made.delete(maskDb);
      await log(`${env.name} is now a neutralized, masked copy of ${source.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      if (logins) {
        await recordCloneLogin({ logins: logins.logins, password: login.secret ? null : login.password, secret: login.secret });
        await log(loginLine(env.name, (await project()).slug, logins, login.secret));
      } else {
        await log(`the clone has no admin user (login admin, or id 2): nobody can log in with a password until one is set (odoo-bin shell)`);
      }
      return {
        cloneBackupId: written.id, source: source.name, filestore: params.filestore, seconds: (Date.now() - started) / 1000,
        ...(logins ? { login: { logins: logins.logins, passwordSecret: login.secret } } : {}),
      };
    } finally {
      signal.removeEventListener('abort', onAbort);
      // A backup that failed after its filestore was stored leaves the early unpacking to finish and remove
      // (restoreBackup removes it itself when it fails).
      if (unpacking && early) {
        await unpacking.catch(() => {});
        await runFs.rm(early).catch(() => {});
      }
      if (made.size) {
        const c = signal.aborted ? await maintenance(src).catch(() => undefined) : admin;
        for (const name of made) {
          if (!c) break;
          const what = name === maskDb ? 'working copy' : 'unmasked copy';
          await dropDatabase(c, name).then(
            // A working copy a failed switch had already renamed (and removed) is not there any more.
            (dropped) => (dropped ? log(`the ${what} ${name} was dropped`) : undefined),
            (err) => log(`could not drop the ${what} ${name}: ${(err as Error).message}; the next clone removes it`, 'stderr'),
          );
        }
        if (c && c !== admin) await c.end().catch(() => {});
      }
      await admin.end().catch(() => {});
    }
  },
});

/** As for database passwords: a shorter one is easy to guess and run logs can hide it only as a whole word. */
const MIN_CLONE_PASSWORD = STRONG_SECRET_LENGTH;

/**
 * The password the clone's users get: the value of the project's clone password secret (a name the
 * operator bound to the project), or a fresh random one. The secret's value is redacted from the log.
 */
function clonePassword(project: { slug: string; clone_password_secret?: string | null }, infra: { secret(name: string): string }, redact: (v: string) => void) {
  const secret = project.clone_password_secret ?? null;
  if (!secret) {
    const password = generateOdooPassword();
    redact(password);
    return { password, secret: null };
  }
  const password = infra.secret(secret);
  if (password.length < MIN_CLONE_PASSWORD) {
    throw new Error(`the secret "${secret}" (the project's clone password) is shorter than ${MIN_CLONE_PASSWORD} characters; the operator sets a longer value`);
  }
  return { password, secret };
}

/** What the run log says about logging in: the logins, and where the password is (never the password). */
function loginLine(env: string, slug: string, l: CloneLogins, secret: string | null): string {
  const shown = l.logins.length > 12 ? `${l.logins.slice(0, 12).join(', ')} and ${l.logins.length - 12} more` : l.logins.join(', ');
  const users = !l.knowsInternal
    ? 'only the admin user has a password (this database does not say which users are internal: no res_users.share)'
    : `the admin and ${l.users - 1} active internal user(s) have it${l.renamed ? ', internal users with the login user-<their id> (the same from clone to clone; their masked logins are not typeable)' : ', with their logins as they are in the copy (the profile keeps logins)'}; portal and public users have none`;
  const where = secret
    ? `the project's clone password (the registry secret "${secret}"; the operator gives its value to the team)`
    : `a fresh password made for this clone, for the members who may operate ${env}: odooops env login ${slug} ${env}`;
  return `log in to ${env} as ${shown} with ${where}; ${users}; production's password hashes never leave production`;
}

/**
 * The project's masking profile with the run's rules merged onto it, refused when they would weaken
 * it (checked at queue time too; a run queued straight in SQL is stopped here), floors enforced.
 */
async function cloneProfile(project: { slug: string; mask_profile?: unknown }, runProfile: unknown, log: (l: string) => Promise<void>) {
  const base = projectMaskProfile(project.mask_profile);
  const source = project.mask_profile == null ? 'the default profile (the project has none of its own)' : "the project's profile";
  if (runProfile === undefined) {
    await log(`masking: ${source}`);
    return withFloors(base);
  }
  const merged = tightenProfile(base, parseMaskProfile(runProfile));
  if (merged.weakened.length) throw new Error(`${weakenedMessage(merged.weakened)}; ${weakenedHint(project.slug)}`);
  await log(`masking: ${source}, made stricter by the run's profile`);
  return withFloors(merged.profile);
}

async function otherEnvironmentById(find: (name?: string) => Promise<EnvironmentRow>, id: string, self: EnvironmentRow): Promise<EnvironmentRow> {
  // Backups record environment ids; the production environment is the usual source.
  const prod = await find().catch(() => undefined);
  if (prod?.id === id) return prod;
  if (self.id === id) return self;
  throw new Error(CLONE_BACKUP_NOT_PRODUCTION);
}

/** Odoo's web.base.url is an origin (scheme, host, port), not a page: https://staging.example.com. */
function baseUrlOf(url: string | null): string {
  if (!url) return 'http://localhost:8069';
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
