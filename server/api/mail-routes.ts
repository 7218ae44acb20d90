// The mail catcher's API: an environment's caught mail, for the members who may operate it
// (ops.can_operate; RLS on ops.mails says the same). The HTML of a mail is returned as data for a
// sandboxed view, never served as a page; attachments are served as downloads only.
import { Readable } from 'node:stream';
import type pg from 'pg';
import { simpleParser, type Attachment } from 'mailparser';
import { z } from 'zod';
import * as C from '../../contract/index.ts';
import { asUser } from '../db/session.ts';
import { HttpError, notFound } from './errors.ts';
import { ENV_SELECT, PROJECT_SELECT } from './mappers.ts';
import type { RequestContext, Reply, Route } from './routes.ts';

const P = '(?<project>[^/]+)';
const E = '(?<env>[^/]+)';
const route = (method: string, path: string, handler: (ctx: RequestContext) => Promise<Reply>): Route => ({ method, pattern: new RegExp(`^${path}$`), handler });
const MailId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const Limit = z.coerce.number().int().min(0).max(200).default(100);
const PartIndex = z.coerce.number().int().min(0).max(10_000);

/** The environment, when the caller may operate it; 404 for one they cannot see, 403 for a viewer. */
async function operableEnvironment(c: pg.PoolClient, slug: string, name: string): Promise<{ id: string; name: string; project: string }> {
  if (!C.ProjectSlug.safeParse(slug).success) throw new HttpError(400, 'invalid_request', `project "${slug}" is not a project name`);
  if (!C.EnvironmentName.safeParse(name).success) throw new HttpError(400, 'invalid_request', `environment "${name}" is not an environment name`);
  const project = (await c.query(`${PROJECT_SELECT} where p.slug = $1`, [slug])).rows[0] as { id: string; role: C.Role | null } | undefined;
  if (!project) throw notFound(`project "${slug}"`);
  const env = (await c.query(`${ENV_SELECT} where e.project_id = $1 and e.name = $2`, [project.id, name])).rows[0];
  if (!env) throw notFound(`environment "${name}" in project "${slug}"`);
  if (!(await c.query('select ops.can_operate($1, $2) as ok', [project.id, env.stage])).rows[0].ok) {
    throw new HttpError(403, 'forbidden', `your role in ${slug} (${project.role ?? 'not a member'}) cannot read the mail of ${env.stage} environments; a member who may operate ${name} can`);
  }
  if (env.stage === 'production') throw new HttpError(404, 'no_mail_catcher', `${name} is a production environment: its mail is delivered, not caught`);
  return { id: env.id, name: env.name, project: slug };
}

const toMail = (r: Record<string, any>): C.CaughtMail => ({
  id: Number(r.id), from: r.from_header || r.envelope_from, to: r.to_header || r.envelope_to.join(', '), subject: r.subject,
  date: r.sent_at ? r.sent_at.toISOString() : null, receivedAt: r.received_at.toISOString(), size: r.size_bytes, attachments: r.attachments,
});

async function loadMail(c: pg.PoolClient, envId: string, raw: string): Promise<Record<string, any>> {
  const id = MailId.safeParse(raw);
  if (!id.success) throw notFound(`mail ${raw}`);
  const row = (await c.query('select * from ops.mails where id = $1 and environment_id = $2', [id.data, envId])).rows[0];
  if (!row) throw notFound(`mail ${id.data} (the catcher keeps mail for a limited time)`);
  return row;
}

// cid: images become data: URIs in the HTML (skipImageLinks off): the view shows them without any request.
const parse = (raw: Buffer) => simpleParser(raw, { skipTextToHtml: true, skipTextLinks: true, maxHtmlLengthToParse: 5 * 1024 * 1024 });
const isInline = (a: Attachment) => a.contentDisposition === 'inline' && !!a.contentId && a.contentType.startsWith('image/');

/**
 * A file name that is only a name: the last segment of what the mail says (no directories, no "..", no
 * control or shell-special characters), or attachment-<n>.
 */
export function safeFilename(name: string | undefined, index: number): string {
  const last = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = last.normalize('NFKC').replace(/[^\p{L}\p{N}._ ()+-]/gu, '_').replace(/^[.\s_]+/, '').replace(/[.\s]+$/, '').slice(0, 120);
  return cleaned || `attachment-${index}`;
}

export const mailRoutes: Route[] = [
  route('GET', `/api/projects/${P}/environments/${E}/mails`, async ({ pool, claims, params, query }) =>
    asUser(pool, claims, async (c) => {
      const env = await operableEnvironment(c, params.project!, params.env!);
      const limit = Limit.safeParse(query.limit ?? undefined);
      if (!limit.success) throw new HttpError(400, 'invalid_request', 'limit: a number from 0 to 200');
      const total = Number((await c.query('select count(*) as n from ops.mails where environment_id = $1', [env.id])).rows[0].n);
      const { rows } = await c.query(
        `select id, envelope_from, envelope_to, from_header, to_header, subject, sent_at, received_at, size_bytes, attachments
         from ops.mails where environment_id = $1 order by received_at desc, id desc limit $2`, [env.id, limit.data]);
      const body: C.CaughtMailList = { environment: env.name, total, mails: rows.map(toMail) };
      return { body };
    })),
  route('GET', `/api/projects/${P}/environments/${E}/mails/(?<mail>[^/]+)`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const env = await operableEnvironment(c, params.project!, params.env!);
      const row = await loadMail(c, env.id, params.mail!);
      const m = await parse(row.raw);
      const headers = m.headerLines.map((h) => {
        const i = h.line.indexOf(':');
        return { name: h.line.slice(0, i).trim(), value: h.line.slice(i + 1).replace(/\r?\n[ \t]+/g, ' ').trim() };
      });
      const body: C.CaughtMailDetail = {
        ...toMail(row), envelopeFrom: row.envelope_from, envelopeTo: row.envelope_to, headers,
        text: m.text ?? null, html: typeof m.html === 'string' ? m.html : null,
        parts: m.attachments.map((a, index) => ({ index, filename: safeFilename(a.filename, index), contentType: a.contentType, size: a.size, inline: isInline(a) })),
      };
      return { body };
    })),
  route('GET', `/api/projects/${P}/environments/${E}/mails/(?<mail>[^/]+)/attachments/(?<part>[^/]+)`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const env = await operableEnvironment(c, params.project!, params.env!);
      const row = await loadMail(c, env.id, params.mail!);
      const index = PartIndex.safeParse(params.part);
      const a = index.success ? (await parse(row.raw)).attachments[index.data] : undefined;
      if (!a) throw notFound(`attachment ${params.part} of mail ${row.id}`);
      const name = safeFilename(a.filename, index.data!);
      // Whatever type the mail claims (text/html, image/svg+xml…), a download of bytes: never rendered
      // by a browser or a webview, never sniffed into something that runs.
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'content-length': String(a.content.length),
        'content-disposition': `attachment; filename="${name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; sandbox",
        'x-odooops-content-type': a.contentType.replace(/[^\x20-\x7e]/g, '').slice(0, 200),
        'cache-control': 'no-store',
      };
      return { stream: { readable: Readable.from([a.content]), headers } };
    })),
];
