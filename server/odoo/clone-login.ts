// Logging in to a masked clone (SECURITY.md, "Logging in to a clone"). No password hash leaves
// production: the masking floors empty res_users.password. The clone's admin and every active internal
// user (res_users.share = false: the company's own staff accounts) then get one password, the project's
// clone password (a secret the operator declared) or a fresh random one, hashed as Odoo hashes passwords.
// Portal and public users (share = true) get none. Internal users whose logins the profile masked get a
// login a developer can type and that stays the same from clone to clone: user-<their id>.
import type pg from 'pg';
import { hashOdooPassword } from './odoo-password.ts';

export interface CloneLogins {
  /** The admin's login first, then the internal users' by id. */
  logins: string[];
  /** Internal users given the password, the admin included. */
  users: number;
  /** Whether internal users' masked logins were replaced by user-<id>. */
  renamed: boolean;
  /** False for databases without res_users.share (only the admin gets the password then). */
  knowsInternal: boolean;
}

/** The login an internal user gets on a clone whose profile masks logins. */
export const cloneLogin = (id: number) => `user-${id}`;

/**
 * Checks that no production password is left in the copy (a problem is added otherwise), then gives the
 * admin user (login "admin", or id 2 when no user has that login) and every active internal user
 * `password`. Null when the copy has no admin user.
 */
export async function setCloneLogins(db: pg.ClientBase, password: string, opts: { loginsMasked: boolean }, problems: string[]): Promise<CloneLogins | null> {
  // What the masking writes in place of a password: null, or "masked <hash>" where the column is NOT NULL.
  const left = Number((await db.query(`select count(*) as n from res_users where password is not null and password !~ '^masked [0-9a-f]{16}$'`)).rows[0].n);
  if (left) problems.push(`${left} row(s) of res_users.password still hold a password from production`);
  const { rows: admins } = await db.query(`select id, login from res_users where login = 'admin'
    union all select id, login from res_users where id = 2 and not exists (select 1 from res_users where login = 'admin') limit 1`);
  if (!admins[0]) return null;
  const adminId = Number(admins[0].id);
  const knowsInternal = (await db.query(
    `select 1 from information_schema.columns where table_schema = 'public' and table_name = 'res_users' and column_name = 'share'`)).rowCount === 1;
  // __system__ (id 1) is Odoo's superuser: nobody logs in as it, in production or here.
  const internal: { id: number; login: string }[] = knowsInternal
    ? (await db.query(`select id, login from res_users where active and share is not true and id <> $1 and login <> '__system__' order by id`, [adminId]))
        .rows.map((r) => ({ id: Number(r.id), login: String(r.login) }))
    : [];
  const renamed = opts.loginsMasked && internal.length > 0;
  if (renamed) {
    const ids = internal.map((u) => u.id);
    const taken = (await db.query(`select login from res_users where login = any ($1::text[]) and not (id = any ($2::int[]))`, [ids.map(cloneLogin), ids])).rows;
    if (taken.length) {
      throw new Error(`cannot give internal users the logins user-<id>: ${taken.map((r) => r.login).join(', ')} already belong to other users of the copy`);
    }
    await db.query(`update res_users set login = 'user-' || id where id = any ($1::int[])`, [ids]);
    for (const u of internal) u.login = cloneLogin(u.id);
  }
  // One hash for all: they share the password anyway, and deriving it costs ~0.5 s.
  await db.query('update res_users set password = $2 where id = any ($1::int[])', [[adminId, ...internal.map((u) => u.id)], await hashOdooPassword(password)]);
  return { logins: [String(admins[0].login), ...internal.map((u) => u.login)], users: 1 + internal.length, renamed, knowsInternal };
}
