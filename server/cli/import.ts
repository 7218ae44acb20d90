// `odooops env import PROJECT ENV FILE [--filestore TARBALL]`: streams an Odoo zip or a pg_dump -Fc file
// to the server (a pg_dump with a filestore tarball goes as a tar bundle made on the fly: dump.pgc and
// filestore.tar[.gz]), with a progress line, then follows the import run or says how to get the approval
// an import into production needs.
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import * as C from '../../contract/index.ts';
import { ApiClient, CliError, EXIT } from '../../client/api-client.ts';
import { followLogs } from '../../client/follow.ts';
import { tarPack } from '../storage/tar-streams.ts';

/** "20G", "500M", "1024" → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a size (e.g. 500M, 20G)`);
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  if (!Number.isFinite(n) || n < 1) throw new Error(`"${text}" is not a size`);
  return Math.floor(n);
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

async function magic(file: string): Promise<'zip' | 'pgdump' | 'gzip' | 'tar' | 'other'> {
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read ${file}: ${err.code ?? err.message}`, EXIT.usage);
  });
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    if (bytesRead >= 4 && b.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 5 && b.subarray(0, 5).toString('latin1') === 'PGDMP') return 'pgdump';
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (bytesRead >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return 'other';
  } finally {
    await fh.close();
  }
}

/** The body to send: the file itself, or a bundle of a pg_dump and its filestore tarball. */
export async function importBody(file: string, filestore?: string): Promise<{ stream: () => Readable; bytes: number | null; what: string }> {
  const kind = await magic(file);
  if (kind !== 'zip' && kind !== 'pgdump') {
    throw new CliError(`${file} is neither an Odoo backup zip nor a pg_dump -Fc file`, EXIT.usage,
      'Export the database from Odoo (Database manager → Backup, zip with filestore) or Odoo.sh (Backups → Download), or with pg_dump --format=custom.');
  }
  const size = (await stat(file)).size;
  if (!filestore) return { stream: () => createReadStream(file), bytes: size, what: kind === 'zip' ? 'Odoo zip' : 'pg_dump' };
  if (kind === 'zip') throw new CliError('--filestore goes with a pg_dump -Fc file; an Odoo zip has its filestore inside', EXIT.usage);
  const fsKind = await magic(filestore);
  if (fsKind !== 'tar' && fsKind !== 'gzip') throw new CliError(`${filestore} is not a tar or tar.gz archive of the filestore`, EXIT.usage);
  const fsSize = (await stat(filestore)).size;
  const pad = (n: number) => 512 + Math.ceil(n / 512) * 512;
  return {
    bytes: pad(size) + pad(fsSize) + 1024,
    what: 'pg_dump with filestore',
    stream: () => {
      const { pack, out, entry } = tarPack();
      void (async () => {
        for (const [name, path, bytes] of [['dump.pgc', file, size], [fsKind === 'gzip' ? 'filestore.tar.gz' : 'filestore.tar', filestore, fsSize]] as const) {
          const { sink, done } = entry({ name, size: bytes, mode: 0o600 });
          await new Promise<void>((resolve, reject) => {
            done.then(resolve, reject);
            createReadStream(path).on('error', reject).pipe(sink);
          });
        }
        pack.finalize();
      })().catch((err) => out.destroy(err));
      return out;
    },
  };
}

/** POSTs a stream; resolves with the answer (also when the server refused before reading it all). */
function post(api: ApiClient, path: string, body: Readable, bytes: number | null): Promise<{ status: number; text: string }> {
  const url = new URL(path, api.target.url);
  const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${api.target.token}`, 'content-type': 'application/octet-stream',
      ...(bytes === null ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(bytes) }),
    },
  });
  return new Promise((resolve, reject) => {
    let answered = false;
    req.on('response', (res: IncomingMessage) => {
      answered = true;
      body.unpipe(req);
      body.destroy();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(new CliError(`the upload to ${api.target.url} failed: ${err.message}`, EXIT.unreachable, 'Nothing was imported; run the command again.'));
    });
    body.on('error', (err) => req.destroy(err));
    body.pipe(req);
  });
}

export interface ImportOptions {
  filestore?: string;
  follow?: boolean;
  json?: boolean;
}

/**
 * Sends FILE (and its filestore tarball) as an import of PROJECT/ENV (both URL-encoded); `progress`
 * hears the bytes sent. The server's answer, or a CliError with its message and hint.
 */
export async function uploadImport(api: ApiClient, project: string, env: string, file: string, filestore: string | undefined,
  progress: (sent: number, total: number | null) => void, signal?: AbortSignal): Promise<{ upload: C.ImportUpload; what: string }> {
  const body = await importBody(file, filestore);
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      sent += chunk.length;
      progress(sent, body.bytes);
      cb(null, chunk);
    },
  });
  await api.bearer(); // a signed-in session's token, refreshed first if it is about to expire: a stream cannot be sent twice
  const src = body.stream();
  src.on('error', (err) => counter.destroy(err));
  signal?.addEventListener('abort', () => counter.destroy(new Error('cancelled')), { once: true });
  const res = await post(api, `/api/projects/${project}/environments/${env}/imports`, src.pipe(counter), body.bytes).catch((err) => {
    if (signal?.aborted) throw new CliError(`cancelled after ${sent} bytes; nothing was imported`, EXIT.usage);
    throw err;
  });
  let json: unknown = null;
  try {
    json = JSON.parse(res.text);
  } catch {}
  if (res.status !== 201) {
    const e = C.ApiError.safeParse(json);
    throw new CliError(e.success ? e.data.error.message : `HTTP ${res.status}`, res.status >= 500 ? EXIT.server : EXIT.rejected, e.success ? e.data.error.hint : undefined, e.success ? e.data.error.code : undefined);
  }
  return { upload: C.ImportUpload.parse(json), what: body.what };
}

export async function importFile(api: ApiClient, project: string, env: string, file: string, o: ImportOptions): Promise<number> {
  const started = Date.now();
  let shown = -1;
  const tty = !o.json && process.stderr.isTTY;
  const { upload: up, what } = await uploadImport(api, project, env, file, o.filestore, (sent, total) => {
    const pct = total ? Math.floor((sent / total) * 100) : -1;
    if (tty) process.stderr.write(`\ruploading ${basename(file)}: ${mib(sent)}${total ? ` of ${mib(total)} (${pct}%)` : ''}`);
    else if (!o.json && pct >= 0 && pct >= shown + 25) {
      shown = pct - (pct % 25);
      process.stderr.write(`uploading ${basename(file)}: ${shown}%\n`);
    }
  });
  if (tty) process.stderr.write('\n');
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (o.json && !o.follow) {
    console.log(JSON.stringify(up, null, 2));
    return EXIT.ok;
  }
  console.error(`uploaded ${mib(up.bytes)} in ${secs} s (${what}), sha256 ${up.sha256}: Odoo ${up.odooVersion}${up.sourceDatabase ? ` (database ${up.sourceDatabase})` : ''}, ${up.modules} modules, ${up.filestoreFiles} filestore files`);
  if (!up.run) {
    const params = JSON.stringify(up.params);
    console.log(`upload ${up.upload} is kept; an import into production needs a second admin's approval for exactly this upload:
  odooops approval request ${decodeURIComponent(project)} ${decodeURIComponent(env)} import --params '${params}'
  (another admin) odooops approval approve APPROVAL_ID
  odooops run queue ${decodeURIComponent(project)} ${decodeURIComponent(env)} import --params '${params}' --approval APPROVAL_ID --follow`);
    return EXIT.ok;
  }
  console.error(`queued import run ${up.run.id}`);
  if (!o.follow) {
    console.log(`queued import run ${up.run.id}; follow it with: odooops run logs ${up.run.id} --follow`);
    return EXIT.ok;
  }
  const status = await followLogs(api, up.run.id, 0, (l) => console.log(o.json ? JSON.stringify(l) : `${l.ts} ${l.stream === 'stdout' ? '' : `[${l.stream}] `}${l.line}`));
  return status === 'succeeded' ? EXIT.ok : EXIT.runFailed;
}
