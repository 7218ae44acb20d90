// A small typed client of the HTTP API for the CLI. It finds a local server by itself through the
// connection file the server writes, like the extension's "Connect…" does.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { ApiError, LocalConnection } from '../contract/index.ts';
import { clientFiles, odooopsHome } from '../contract/home.ts';
import { saveProblem } from './save-target.ts';

export class CliError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** The server's error code (no_clone, forbidden...), when the server refused. */
  readonly code: string | undefined;
  constructor(message: string, exitCode: number, hint?: string, code?: string) {
    super(message);
    this.exitCode = exitCode;
    this.hint = hint;
    this.code = code;
  }
}

export const EXIT = { ok: 0, runFailed: 1, usage: 2, rejected: 3, unreachable: 4, server: 5 } as const;

export interface Target {
  url: string;
  token: string;
}

export function resolveTarget(opts: { url?: string; token?: string; home?: string }): Target {
  const url = opts.url ?? process.env.ODOOOPS_URL;
  const token = opts.token ?? process.env.ODOOOPS_TOKEN;
  if (url && token) return { url, token };
  const file = clientFiles(odooopsHome(opts.home)).connection;
  if (!existsSync(file)) {
    throw new CliError(
      'no OdooOps server found',
      EXIT.unreachable,
      `Start one with \`npm start\` (or \`odooops server\`), or pass --url and --token (ODOOOPS_URL / ODOOOPS_TOKEN). Looked for ${file}.`,
    );
  }
  const conn = LocalConnection.parse(JSON.parse(readFileSync(file, 'utf8')));
  return { url: url ?? conn.url, token: token ?? conn.token };
}

export class ApiClient {
  readonly target: Target;
  private readonly tokenListeners = new Set<(token: string) => void>();
  constructor(target: Target) {
    this.target = target;
  }

  /**
   * A renewed session's token: later requests use it, and whoever listens (live Realtime channels)
   * hands it on before the old one expires.
   */
  setToken(token: string): void {
    if (token === this.target.token) return;
    this.target.token = token;
    for (const l of this.tokenListeners) l(token);
  }

  /**
   * A signed-in session (client/session.ts) that refreshes itself: asked for a fresh token before each
   * request, and to renew it once when the server answers 401 token_expired (clocks can disagree).
   */
  private session: import('./session.ts').TokenSource | undefined;
  useSession(session: import('./session.ts').TokenSource | undefined): void {
    this.session = session;
  }

  /** The bearer token to send now (a session's, refreshed first when it is about to expire). */
  async bearer(): Promise<string> {
    if (this.session) this.setToken(await this.session.token());
    return this.target.token;
  }

  /** Called with each new token; returns how to stop listening. */
  onToken(listener: (token: string) => void): () => void {
    this.tokenListeners.add(listener);
    return () => this.tokenListeners.delete(listener);
  }

  private async fetch(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const token = await this.bearer();
    try {
      return await fetch(new URL(path, this.target.url), {
        method,
        signal,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      if (signal?.aborted) throw new CliError('cancelled', EXIT.usage);
      throw new CliError(`cannot reach the OdooOps server at ${this.target.url}: ${(err as Error).cause ?? (err as Error).message}`, EXIT.unreachable,
        'Is the server running? Start it with `npm start`.');
    }
  }

  /**
   * Streams a download into a file (named by the server's Content-Disposition when not given); written
   * beside it first and renamed when complete, so a broken download leaves no partial file.
   */
  async download(path: string, file: string | undefined, progress: (bytes: number) => void, expect?: { sha256: string }, signal?: AbortSignal): Promise<{ file: string; bytes: number }> {
    // Where it goes is checked before anything is asked of the server (a missing folder is not cured by retrying).
    const problem = file === undefined ? null : await saveProblem(file);
    if (problem) throw new CliError(problem.message, EXIT.usage, problem.hint);
    const res = await this.fetch('GET', path, undefined, signal);
    if (!res.ok || !res.body) await this.fail(res, await res.text());
    const named = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '')?.[1];
    const dest = file ?? named?.replace(/[/\\]/g, '_') ?? 'backup.zip';
    const here = file === undefined ? await saveProblem(dest) : null;
    if (here) {
      await res.body?.cancel();
      throw new CliError(here.message, EXIT.usage, here.hint);
    }
    const part = `${dest}.part`;
    let bytes = 0;
    const hash = createHash('sha256');
    const count = new Transform({ transform(chunk: Buffer, _e, done) { bytes += chunk.length; hash.update(chunk); progress(bytes); done(null, chunk); } });
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), count, createWriteStream(part), { signal });
    } catch (err) {
      await rm(part, { force: true });
      if (signal?.aborted) throw new CliError(`cancelled after ${bytes} bytes; nothing was kept`, EXIT.usage);
      throw new CliError(`the download broke off after ${bytes} bytes: ${(err as Error).message}`, EXIT.unreachable, 'Run the command again.');
    }
    const sha256 = hash.digest('hex');
    if (expect && sha256 !== expect.sha256) {
      await rm(part, { force: true });
      throw new CliError(`${path} arrived damaged: its SHA-256 is ${sha256}, the manifest says ${expect.sha256}; nothing was changed`, EXIT.server,
        'Run the command again; if it keeps failing, the stored backup is corrupt: make a new clone.');
    }
    await rename(part, dest);
    return { file: dest, bytes };
  }

  private async fail(res: Response, text: string): Promise<never> {
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    const parsed = ApiError.safeParse(json);
    const message = parsed.success ? parsed.data.error.message : `HTTP ${res.status}`;
    throw new CliError(message, res.status >= 500 ? EXIT.server : EXIT.rejected, parsed.success ? parsed.data.error.hint : undefined,
      parsed.success ? parsed.data.error.code : undefined);
  }

  async request<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<{ status: number; data: T }> {
    let res = await this.fetch(method, path, body);
    let text = await res.text();
    if (res.status === 401 && this.session && /"code"\s*:\s*"token_expired"/.test(text)) {
      await this.session.renew(this.target.token);
      res = await this.fetch(method, path, body);
      text = await res.text();
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      if (res.ok) throw new CliError(`${this.target.url} answered, but not as an OdooOps server (no JSON)`, EXIT.unreachable, 'Check --url / ODOOOPS_URL.');
    }
    if (!res.ok) await this.fail(res, text);
    return { status: res.status, data: schema.parse(json) };
  }

  get<T>(path: string, schema: z.ZodType<T>) {
    return this.request('GET', path, schema).then((r) => r.data);
  }
}
