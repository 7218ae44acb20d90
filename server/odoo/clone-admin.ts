// Logging in to a masked clone: no password hash leaves production (the masking floors empty
// res_users.password), so the clone's admin user gets a fresh random password, hashed as Odoo hashes
// passwords, which the clone run tells the project's members.
import type pg from 'pg';
import { generateOdooPassword, hashOdooPassword } from './odoo-password.ts';

export interface CloneAdmin {
  id: number;
  login: string;
  password: string;
}

/**
 * Checks that no production password is left in the copy (a problem is added otherwise), then gives
 * the admin user (login "admin", or id 2 when no user has that login) a fresh password. Null when the
 * copy has no such user.
 */
export async function setCloneAdminPassword(db: pg.ClientBase, problems: string[]): Promise<CloneAdmin | null> {
  // What the masking writes in place of a password: null, or "masked <hash>" where the column is NOT NULL.
  const left = Number((await db.query(`select count(*) as n from res_users where password is not null and password !~ '^masked [0-9a-f]{16}$'`)).rows[0].n);
  if (left) problems.push(`${left} row(s) of res_users.password still hold a password from production`);
  const { rows } = await db.query(`select id, login from res_users where login = 'admin'
    union all select id, login from res_users where id = 2 and not exists (select 1 from res_users where login = 'admin') limit 1`);
  if (!rows[0]) return null;
  const password = generateOdooPassword();
  await db.query('update res_users set password = $2 where id = $1', [rows[0].id, await hashOdooPassword(password)]);
  return { id: Number(rows[0].id), login: String(rows[0].login), password };
}
