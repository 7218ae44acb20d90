// Points a neutralized Odoo's outgoing mail at the mail catcher. Odoo's neutralization (base's
// neutralize.sql) archives every mail server and adds an active dummy one on host "invalid", so that no
// mail leaves and no command-line server is used as a fallback; here that dummy server becomes the
// catcher, with the environment's own login, so the mail Odoo sends can be read in the editor. Odoo 17
// and 19 both have smtp_authentication 'login' (user and password, AUTH PLAIN or LOGIN as the server
// offers) and smtp_encryption 'none'; 19 adds max_email_size (MB), set to the catcher's limit so Odoo
// sends bigger attachments as links rather than have the mail refused.
import pg from 'pg';
import type { PgTarget } from './pg-tools.ts';
import type { MailLogin } from '../mail/login.ts';

export const DUMMY_SERVER = 'neutralization - disable emails';
export const CATCHER_SERVER = 'OdooOps mail catcher';

/**
 * In the caller's transaction: every other server archived, the catcher the one active server. The
 * caller has made sure the database is not production's.
 */
export async function pointMailAtCatcher(db: pg.ClientBase, login: MailLogin, log: (l: string) => Promise<void>): Promise<void> {
  const cols = new Set((await db.query(`select column_name from information_schema.columns where table_schema = 'public' and table_name = 'ir_mail_server'`)).rows.map((r) => r.column_name as string));
  if (!cols.size) {
    await log('mail catcher: this database has no ir_mail_server table; nothing to point');
    return;
  }
  await db.query(`UPDATE ir_mail_server SET active = false WHERE active AND name NOT IN ($1, $2)`, [DUMMY_SERVER, CATCHER_SERVER]);
  const set: [string, unknown][] = [
    ['name', CATCHER_SERVER], ['smtp_host', login.host], ['smtp_port', login.port], ['smtp_user', login.user], ['smtp_pass', login.password],
    ['smtp_authentication', 'login'], ['smtp_encryption', 'none'], ['active', true],
    ...(cols.has('from_filter') ? [['from_filter', null] as [string, unknown]] : []),
    ...(cols.has('sequence') ? [['sequence', 1] as [string, unknown]] : []),
    ...(cols.has('max_email_size') ? [['max_email_size', login.maxMessageMb] as [string, unknown]] : []),
    ...(cols.has('smtp_debug') ? [['smtp_debug', false] as [string, unknown]] : []),
  ];
  const names = set.map(([c]) => c);
  const values = set.map(([, v]) => v);
  const assign = names.map((c, i) => `"${c}" = $${i + 1}`).join(', ');
  const n = values.length;
  const updated = await db.query(`UPDATE ir_mail_server SET ${assign} WHERE name IN ($${n + 1}, $${n + 2})`, [...values, DUMMY_SERVER, CATCHER_SERVER]);
  if (!updated.rowCount) {
    await db.query(`INSERT INTO ir_mail_server (${names.map((c) => `"${c}"`).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`, values);
  }
  await log(`mail catcher: outgoing mail goes to the OdooOps mail catcher at ${login.host}:${login.port} as ${login.user} (kept for this environment, never delivered)`);
}

/** The log line when no catcher is known: mail stays with Odoo's dummy server, as neutralization leaves it. */
export const NO_CATCHER = 'mail catcher: none on this worker (the registry\'s mailCatcher); outgoing mail goes to Odoo\'s dummy server "invalid" and is lost';

/**
 * The beforeSwitch step of a restore into a staging or development environment: when the restored
 * database is neutralized (a clone, or a backup of one), a fresh catcher login is issued and the database
 * pointed at the catcher. Production is never touched, whatever it is given.
 */
export function catchMailBeforeSwitch(opts: {
  env: { name: string; stage: string };
  target: PgTarget;
  issue: () => Promise<MailLogin | null>;
  log: (l: string) => Promise<void>;
  /** A clone is neutralized by construction; a restored backup only when its flag says so. */
  onlyIfNeutralized: boolean;
}): (newDb: string) => Promise<void> {
  return async (newDb) => {
    if (opts.env.stage === 'production') return;
    const db = new pg.Client({ ...opts.target, database: newDb, application_name: 'odooops' });
    db.on('error', () => {});
    await db.connect();
    try {
      if (opts.onlyIfNeutralized) {
        const flag = await db.query(`select value from ir_config_parameter where key = 'database.is_neutralized'`).catch(() => ({ rows: [] as { value: string }[] }));
        if (flag.rows[0]?.value !== 'true') return;
      }
      const login = await opts.issue();
      if (!login) return void (await opts.log(NO_CATCHER));
      await db.query('begin');
      await pointMailAtCatcher(db, login, opts.log);
      await db.query('commit');
    } catch (err) {
      await db.query('rollback').catch(() => {});
      throw err;
    } finally {
      await db.end().catch(() => {});
    }
  };
}
