// Receiving an import upload: the request body streamed into the backup store (never held in memory),
// under the operator's size limit (413 before a byte is read when Content-Length says too much, and as
// soon as a chunked body passes it), atomic (an aborted request leaves no file: the store's put removes
// its .partial), then checked as an Odoo export (odoo/import-archive.ts) before anything is queued.
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupStore } from '../storage/backup-store.ts';
import { BadImport, inspectImport, uploadPrefix, type ImportFacts, type UploadMeta } from '../odoo/import-archive.ts';
import { UnsafeSql } from '../odoo/sql-script.ts';
import { HttpError } from './errors.ts';

export interface ImportLimits {
  /** Bytes an upload may have. */
  maxUploadBytes: number;
  /** Bytes its SQL and filestore may expand to. */
  maxExpandedBytes: number;
}

export const DEFAULT_IMPORT_LIMITS: ImportLimits = { maxUploadBytes: 20 * 1024 ** 3, maxExpandedBytes: 100 * 1024 ** 3 };

const tooLarge = (limit: number) => new HttpError(413, 'payload_too_large',
  `imports are limited to ${limit} bytes (${(limit / 1024 ** 3).toFixed(1)} GiB) on this server; nothing was stored`,
  'The operator sets the limit (odooops server --max-import-size SIZE). Import a smaller file, e.g. without the filestore, or ask for a higher limit.');

/** Fails early when the declared length is over the limit (before any byte is read). */
export function checkDeclaredSize(req: IncomingMessage, limits: ImportLimits): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxUploadBytes) throw tooLarge(limits.maxUploadBytes);
}

export interface ReceivedUpload extends ImportFacts {
  upload: string;
  sha256: string;
  bytes: number;
  prefix: string;
}

/** Uploads not imported within this time are removed (an approval is valid for 24 hours). */
export const STALE_UPLOAD_MS = 48 * 3600_000;

/**
 * Removes an environment's uploads older than STALE_UPLOAD_MS (waiting for an approval that never came,
 * or whose import failed): done on each new upload, so what a member can pile up is bounded per environment.
 */
export async function removeStaleUploads(store: BackupStore, projectId: string, envId: string, now = Date.now()): Promise<number> {
  const dir = store.localPath(`imports/${projectId}/${envId}`);
  if (!dir) return 0;
  let removed = 0;
  for (const id of await readdir(dir).catch(() => [] as string[])) {
    const meta = await stat(join(dir, id, 'upload.json')).catch(() => stat(join(dir, id)).catch(() => null));
    if (meta && now - meta.mtimeMs > STALE_UPLOAD_MS) {
      await store.remove(uploadPrefix(projectId, envId, id)).catch(() => {});
      removed++;
    }
  }
  return removed;
}

export async function receiveImport(req: IncomingMessage, store: BackupStore, where: { projectId: string; envId: string; userId: string }, limits: ImportLimits): Promise<ReceivedUpload> {
  checkDeclaredSize(req, limits);
  await removeStaleUploads(store, where.projectId, where.envId);
  const upload = randomUUID();
  const prefix = uploadPrefix(where.projectId, where.envId, upload);
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen += chunk.length;
      cb(seen > limits.maxUploadBytes ? tooLarge(limits.maxUploadBytes) : null, chunk);
    },
  });
  // A client that goes away mid-upload fails the put, which removes what it wrote.
  pipeline(req, limiter).catch((err) => limiter.destroy(err));
  let stored;
  try {
    stored = await store.put(`${prefix}/upload`, limiter);
  } catch (err) {
    await store.remove(prefix).catch(() => {});
    if (err instanceof HttpError) throw err;
    if (!req.complete) throw new HttpError(400, 'upload_incomplete', `the upload broke off after ${seen} bytes; nothing was stored or changed`, 'Send the file again.');
    throw err;
  }
  if (stored.bytes === 0) {
    await store.remove(prefix);
    throw new HttpError(400, 'invalid_request', 'the upload is empty; send the file as the request body');
  }
  const path = store.localPath(`${prefix}/upload`);
  if (!path) throw new HttpError(503, 'no_backup_store', 'this server\'s backup store cannot check uploads (no local file)');
  let facts: ImportFacts;
  try {
    facts = await inspectImport(path, limits);
  } catch (err) {
    await store.remove(prefix).catch(() => {});
    if (err instanceof BadImport || err instanceof UnsafeSql) throw new HttpError(422, 'bad_import', err.message, 'Export the database again from Odoo (Database manager → Backup, zip) or with pg_dump --format=custom, and import that file.');
    throw err;
  }
  const meta: UploadMeta = {
    upload, sha256: stored.sha256, bytes: stored.bytes, format: facts.format, maxExpandedBytes: limits.maxExpandedBytes,
    odooVersion: facts.odooVersion, majorVersion: facts.majorVersion, uploadedBy: where.userId, uploadedAt: new Date().toISOString(),
  };
  await store.put(`${prefix}/upload.json`, Readable.from([Buffer.from(JSON.stringify(meta, null, 2))]));
  return { ...facts, upload, sha256: stored.sha256, bytes: stored.bytes, prefix };
}
