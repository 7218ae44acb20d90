import { ZodError, z } from 'zod';
import { AuthError } from '../auth/tokens.ts';

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
};

export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const where = first?.path.length ? `${first.path.join('.')}: ` : '';
    return new HttpError(400, 'invalid_request', `${where}${first?.message ?? 'invalid request'}`, undefined, z.treeifyError(err));
  }
  if (err instanceof URIError) return new HttpError(400, 'invalid_request', 'the URL has a malformed %-escape');
  if (err instanceof AuthError) return new HttpError(401, 'unauthorized', err.message, 'Run `odooops login` or pass a valid bearer token.');
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
