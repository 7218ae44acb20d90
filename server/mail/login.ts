// An environment's mail catcher login: a random secret of 32 bytes, of which the control plane keeps only
// the SHA-256 (enough for a secret nobody chose: there is nothing to guess a dictionary from).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a neutralized Odoo is given to send its mail to the catcher. */
export interface MailLogin {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The catcher's size limit (Odoo 19 sends bigger attachments as links). */
  maxMessageMb: number;
}

export const newMailSecret = (): string => randomBytes(32).toString('base64url');

export const mailSecretHash = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/** Compares in constant time (the hash of what was offered against the stored one). */
export function mailSecretMatches(offered: string, stored: Buffer): boolean {
  const h = mailSecretHash(offered);
  return stored.length === h.length && timingSafeEqual(h, stored);
}

/** The SMTP user naming the environment: <project>/<environment>. */
export const mailUser = (project: string, environment: string): string => `${project}/${environment}`;
