import { ZodError, z } from 'zod';
import { AuthError } from '../auth/tokens.ts';
import { BackupObjectMissing } from '../storage/backup-store.ts';

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, hint?: string, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint;
    this.details = details;
  }
}

export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`, 'Check the name; you only see projects you are a member of.');

/** Names only commands that exist (a test checks). */
export const UNAUTHORIZED_HINT =
  'Sign in with `odooops login` (or OdooOps: Sign in in VS Code), or send Authorization: Bearer <token> with a valid token (ODOOOPS_TOKEN or --token for the CLI; the server\'s operator prints one with `odooops token --user <your user id>`).';
const EXPIRED_HINT = 'Refresh the session (POST /api/auth/refresh with its refresh token; the CLI and the extension do it by themselves) and send the request again.';

const GONE = 'The files are gone from the backup store (deleted or lost there); OdooOps cannot bring them back.';

/** A backup whose parts are gone from the store: nothing can be served, and no retry will help. */
export function backupFilesMissing(subject: string, missing: readonly ('dump' | 'filestore')[], next: string): HttpError {
  const parts = missing.map((p) => (p === 'dump' ? 'database dump' : 'filestore')).join(' and ');
  return new HttpError(404, 'backup_files_missing', `${subject}: its ${parts} ${missing.length > 1 ? 'are' : 'is'} missing from the backup store`,
    `${GONE} ${next}`, { missing });
}

// SQLSTATEs raised by the ops functions and constraints, and what they mean to an API caller.
const PG_ERRORS: Record<string, [number, string]> = {
  '42501': [403, 'forbidden'],
  P0002: [404, 'not_found'],
  '23505': [409, 'conflict'],
  '55000': [409, 'conflict'],
  '23514': [400, 'invalid_request'],
  '23502': [400, 'invalid_request'],
  '23503': [400, 'invalid_request'],
  '22023': [400, 'invalid_request'],
  '22P02': [400, 'invalid_request'],
  '22001': [400, 'invalid_request'],
  // NUL in text or jsonb: refused at the edge already; this keeps a path that slips through a 400.
  '22021': [400, 'invalid_request'],
  '22P05': [400, 'invalid_request'],
};

export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const where = first?.path.length ? `${first.path.join('.')}: ` : '';
    return new HttpError(400, 'invalid_request', `${where}${first?.message ?? 'invalid request'}`, undefined, z.treeifyError(err));
  }
  if (err instanceof URIError) return new HttpError(400, 'invalid_request', 'the URL has a malformed %-escape');
  if (err instanceof AuthError) return new HttpError(401, err.code, err.message, err.code === 'token_expired' ? EXPIRED_HINT : UNAUTHORIZED_HINT);
  // Only when a part vanished between the route's check and the read: still before any header went out.
  if (err instanceof BackupObjectMissing) return new HttpError(404, 'backup_files_missing', err.message, `${GONE} Use another backup, or take a new one.`);
  const pgErr = err as { code?: string; message?: string; hint?: string; constraint?: string };
  if (typeof pgErr.code === 'string' && PG_ERRORS[pgErr.code]) {
    const [status, code] = PG_ERRORS[pgErr.code]!;
    let message = pgErr.message ?? code;
    if (pgErr.code === '23505' && pgErr.constraint) message = `already exists (${pgErr.constraint})`;
    if (pgErr.code === '23505' && message.startsWith('idempotency')) message = pgErr.message!;
    if (message.startsWith('new row violates row-level security')) message = 'your role in this project does not allow that';
    return new HttpError(status, code, message, pgErr.hint);
  }
  return new HttpError(500, 'internal', 'internal error', 'The server log has the details.');
}
