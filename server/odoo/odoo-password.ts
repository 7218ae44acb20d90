// Passwords as Odoo stores them in res_users.password: passlib's pbkdf2_sha512,
// "$pbkdf2-sha512$<rounds>$<salt>$<checksum>" in passlib's "ab64" base64 (standard base64 with "+"
// written ".", no padding), a 16-byte salt and a 64-byte derived key. Odoo 17.0 and 19.0 hash with
// max(MIN_ROUNDS = 600_000, password.hashing.rounds) rounds (odoo/addons/base/models/res_users.py,
// _crypt_context) and verify any round count, rehashing on the next login when it is lower.
import { pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const derive = promisify(pbkdf2);

export const ODOO_PASSWORD_ROUNDS = 600_000;
const SALT_BYTES = 16;
const KEY_BYTES = 64;
const FORMAT = /^\$pbkdf2-sha512\$(\d{1,9})\$([A-Za-z0-9./]+)\$([A-Za-z0-9./]+)$/;

const ab64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '').replace(/\+/g, '.');
const fromAb64 = (s: string) => Buffer.from(s.replace(/\./g, '+'), 'base64');

/** A hash Odoo accepts for this password (derived on libuv's thread pool: ~0.5 s at 600,000 rounds). */
export async function hashOdooPassword(password: string, rounds = ODOO_PASSWORD_ROUNDS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(Buffer.from(password, 'utf8'), salt, rounds, KEY_BYTES, 'sha512');
  return `$pbkdf2-sha512$${rounds}$${ab64(salt)}$${ab64(key)}`;
}

/** Whether the password matches a pbkdf2_sha512 hash as Odoo stores it (false for any other format). */
export async function verifyOdooPassword(password: string, hash: string): Promise<boolean> {
  const m = FORMAT.exec(hash);
  if (!m) return false;
  const expected = fromAb64(m[3]!);
  const key = await derive(Buffer.from(password, 'utf8'), fromAb64(m[2]!), Number(m[1]), expected.length, 'sha512');
  return expected.length > 0 && timingSafeEqual(key, expected);
}

/** A fresh password of 120 random bits, in characters anyone can type (base64url: A-Z a-z 0-9 - _). */
export const generateOdooPassword = () => randomBytes(15).toString('base64url');
