import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type pg from 'pg';
import { MAX_BODY_BYTES, type Health } from '../../contract/index.ts';
import { AuthError, type TokenVerifier } from '../auth/tokens.ts';
import { pipeline } from 'node:stream/promises';
import type { BackupStores } from '../storage/store-of.ts';
import { HttpError, toHttpError } from './errors.ts';
import { jsonMediaTypeProblem, parseJsonInput, refuseNul } from './json-input.ts';
import { routes } from './routes.ts';
import type { ImportLimits } from './import-upload.ts';
import type { GitHubFeedback } from '../github/feedback.ts';
import { handleGitHubWebhook } from '../github/webhook.ts';
import type { SignIn } from './sign-in.ts';

export interface ApiOptions {
  pool: pg.Pool;
  verifier: TokenVerifier;
  mode: Health['mode'];
  version: string;
  realtime: Health['realtime'];
  /** How people sign in (GET /api/health tells clients). */
  auth?: Health['auth'];
  /** Where backups are read from (the registry's stores) and import uploads kept. */
  backupStores?: BackupStores;
  /** GitHub webhooks (POST /api/webhooks/github): the secret, and where feedback goes. */
  /** What an import upload may weigh and expand to (the operator's --max-import-size). */
  importLimits?: ImportLimits;
  githubWebhookSecret?: string;
  github?: GitHubFeedback | null;
  /** /api/auth/*: sign-in, refresh, sign-out (server/api/sign-in.ts). */
  signIn?: SignIn;
  log: (message: string) => void;
}

const IDLE_MS = 300_000;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'payload_too_large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const wrongType = jsonMediaTypeProblem(req.headers['content-type']);
  if (wrongType) throw new HttpError(415, 'unsupported_media_type', wrongType);
  return parseJsonInput(Buffer.concat(chunks).toString('utf8'), (reason) => new HttpError(400, 'malformed_json', `the body is not valid JSON: ${reason}`));
}

function send(res: ServerResponse, status: number, body: unknown) {
  if (status === 204 || body === null) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function createApiServer(opts: ApiOptions): Server {
  // An import upload may take longer than Node's default 5 minutes for a whole request: no overall cap,
  // but a connection that moves no byte either way for IDLE_MS is closed (a slow drip holds nothing long).
  return createServer({ requestTimeout: 0 }, async (req, res) => {
    req.setTimeout(IDLE_MS, () => req.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    try {
      if (method === 'POST' && url.pathname === '/api/webhooks/github') {
        // Authenticated by its signature, not a bearer token.
        const r = await handleGitHubWebhook(req, { pool: opts.pool, secret: opts.githubWebhookSecret, github: opts.github ?? null, log: opts.log });
        return send(res, r.status, r.body);
      }
      if (opts.signIn && url.pathname.startsWith('/api/auth/')) {
        // Sign-in and refresh come before there is a bearer token; each endpoint authenticates itself.
        const r = await opts.signIn.handle(req, method, url.pathname, () => readJson(req));
        if (r) {
          for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
          return send(res, r.status, r.body);
        }
      }
      if (method === 'GET' && url.pathname === '/api/health') {
        return send(res, 200, { ok: true, mode: opts.mode, version: opts.version, realtime: opts.realtime, auth: opts.auth ?? { github: null, supabase: null } } satisfies Health);
      }
      const candidates = routes.filter((r) => r.pattern.test(url.pathname));
      if (candidates.length === 0) throw new HttpError(404, 'not_found', `no such endpoint: ${url.pathname}`);
      const match = candidates.find((r) => r.method === method);
      if (!match) throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`);

      const header = req.headers.authorization ?? '';
      const token = /^Bearer (\S+)$/i.exec(header)?.[1];
      if (!token) throw new AuthError('missing bearer token');
      const claims = await opts.verifier.verify(token);
      // A raw route (an import upload) reads the request itself, streamed.
      const body = match.raw ? undefined : await readJson(req);
      const params = Object.fromEntries(
        Object.entries(match.pattern.exec(url.pathname)!.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]),
      );
      refuseNul('path parameter', Object.entries(params));
      refuseNul('query parameter', url.searchParams);
      const reply = await match.handler({ pool: opts.pool, backupStores: opts.backupStores, claims, params, query: Object.fromEntries(url.searchParams), body,
        ...(match.raw ? { request: req, importLimits: opts.importLimits } : {}) });
      if (reply.stream) {
        // Headers are out once bytes flow: a failure later can only cut the download short.
        res.writeHead(reply.status ?? 200, reply.stream.headers);
        await pipeline(reply.stream.readable, res).catch((err) => {
          opts.log(`${method} ${url.pathname}: stream failed: ${(err as Error).message}`);
          res.destroy();
        });
        return;
      }
      send(res, reply.status ?? 200, reply.body);
    } catch (err) {
      const e = toHttpError(err);
      if (e.status >= 500) opts.log(`${method} ${url.pathname} failed: ${(err as Error)?.stack ?? String(err)}`);
      // The request body may still be arriving (e.g. rejected before it was read): drop the connection after replying.
      if (!req.complete) res.setHeader('connection', 'close');
      send(res, e.status, { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.details ? { details: e.details } : {}) } });
    }
  });
}
