// GitHub webhooks → runs, as Odoo.sh maps branches to stages: the signature (X-Hub-Signature-256) is
// checked on the raw bytes before anything is parsed; a delivery seen before does nothing, whether it comes
// again under its id (GitHub's redelivery) or under a new one (the id header is not signed: anyone who saw
// a signed payload can replay it), so deliveries are also known by what they say (dedupeKey); a push to
// the production branch deploys production (through an approval when the project asks for one), to a
// staging branch deploys (or first re-clones) its staging environment, to any other branch deploys a
// development environment created on its first push; deleting the branch destroys it. Pull requests
// get a comment with their development environment's URL.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { verify } from '@octokit/webhooks-methods';
import type pg from 'pg';
import { z } from 'zod';
import { BranchName } from '../../contract/index.ts';
import { asUser, SERVICE_CLAIMS } from '../db/session.ts';
import { HttpError } from '../api/errors.ts';
import { parseJsonInput } from '../api/json-input.ts';
import type { ProjectRow } from '../rows.ts';
import type { GitHubFeedback } from './feedback.ts';
import { createDevEnvironment, findDevEnvironment } from '../deploy/dev-environment.ts';
import { summaryLine } from '../odoo/test-log.ts';

export interface WebhookOptions {
  pool: pg.Pool;
  secret: string | undefined;
  github: GitHubFeedback | null;
  log: (m: string) => void;
}

const MAX_PAYLOAD = 25 * 1024 * 1024; // GitHub's own limit

// pushed_at is a number in push payloads and a date string in the others; GitHub always sends it.
const Repository = z.object({ full_name: z.string(), pushed_at: z.union([z.number(), z.string()]).nullish() });
const Push = z.object({ ref: z.string(), before: z.string().optional(), after: z.string(), deleted: z.boolean().optional(), repository: Repository });
const Delete = z.object({ ref: z.string(), ref_type: z.string(), repository: Repository });
const PullRequest = z.object({
  action: z.string(), number: z.number().int(), repository: Repository,
  pull_request: z.object({ head: z.object({ ref: z.string(), sha: z.string() }), updated_at: z.string().nullish() }),
});
type Event =
  | { event: 'push'; p: z.infer<typeof Push> }
  | { event: 'delete'; d: z.infer<typeof Delete> }
  | { event: 'pull_request'; pr: z.infer<typeof PullRequest> }
  | { event: string };

function parseEvent(event: string, payload: unknown): Event {
  if (event === 'push') return { event, p: Push.parse(payload) };
  if (event === 'delete') return { event, d: Delete.parse(payload) };
  if (event === 'pull_request') return { event, pr: PullRequest.parse(payload) };
  return { event };
}

/**
 * What makes a delivery the same event as another, from the signed payload only: a replay under a new
 * delivery id has the same key, a later real event has another. Each key holds the event's identity and
 * GitHub's own time of it, so the same content happening again for real is new:
 * - push: repository, ref, before and after commit, and repository.pushed_at (the time of this push): a
 *   force-push back to an earlier commit, or a branch re-created at the commit it had, deploys again;
 * - delete: repository, ref type, ref and repository.pushed_at. A delete names no commit, but a branch
 *   can only be deleted again after it was pushed again, which moves pushed_at; a replay of the old
 *   delete keeps the old time and does nothing;
 * - pull_request: repository, number, action, head commit and the pull request's updated_at.
 * Other events act on nothing and have no key (their delivery id still deduplicates them).
 */
export function dedupeKey(e: Event): string | null {
  let identity: unknown[];
  if ('p' in e) identity = [e.p.repository.full_name, e.p.ref, e.p.before ?? null, e.p.after, e.p.repository.pushed_at ?? null];
  else if ('d' in e) identity = [e.d.repository.full_name, e.d.ref_type, e.d.ref, e.d.repository.pushed_at ?? null];
  else if ('pr' in e) identity = [e.pr.repository.full_name, e.pr.number, e.pr.action, e.pr.pull_request.head.sha, e.pr.pull_request.updated_at ?? null];
  else return null;
  // Hashed: a fixed size whatever the refs, and no separator a crafted ref could imitate.
  return createHash('sha256').update(JSON.stringify([e.event, ...identity])).digest('hex');
}

async function rawBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_PAYLOAD) throw new HttpError(413, 'payload_too_large', 'webhook payloads are limited to 25 MB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function handleGitHubWebhook(req: IncomingMessage, o: WebhookOptions): Promise<{ status: number; body: unknown }> {
  if (!o.secret) throw new HttpError(503, 'webhooks_off', 'this server has no GitHub webhook secret; start it with --github-webhook-secret (or ODOOOPS_GITHUB_WEBHOOK_SECRET)');
  const body = await rawBody(req);
  const signature = String(req.headers['x-hub-signature-256'] ?? '');
  // Nothing of the payload is looked at before this.
  if (!signature || !(await verify(o.secret, body.toString('utf8'), signature).catch(() => false))) {
    throw new HttpError(401, 'invalid_signature', 'the X-Hub-Signature-256 of this delivery does not match the webhook secret');
  }
  const event = String(req.headers['x-github-event'] ?? '');
  const delivery = String(req.headers['x-github-delivery'] ?? '');
  if (!/^[A-Za-z0-9-]{1,100}$/.test(delivery)) throw new HttpError(400, 'invalid_delivery', 'X-GitHub-Delivery is missing or malformed');
  const payload = parseJsonInput(body.toString('utf8'),
    () => new HttpError(400, 'malformed_json', 'the payload is not JSON (set the webhook\'s content type to application/json)'));
  const parsed = parseEvent(event, payload);
  const key = dedupeKey(parsed);

  return asUser(o.pool, SERVICE_CLAIMS, async (c) => {
    // Unique delivery id and unique key: of two copies arriving together, the second waits here for the
    // first's transaction and then conflicts (or, if the first failed, goes ahead in its place).
    const fresh = await c.query(
      `insert into ops.webhook_deliveries (delivery_id, event, dedupe_key) values ($1, $2, $3) on conflict do nothing returning delivery_id`,
      [delivery, event, key]);
    if (fresh.rowCount === 0) {
      const prior = (await c.query(
        `select delivery_id, outcome from ops.webhook_deliveries where delivery_id = $1 or dedupe_key = $2 order by delivery_id = $1 desc limit 1`,
        [delivery, key])).rows[0];
      if (prior && prior.delivery_id !== delivery) o.log(`github: delivery ${delivery} repeats delivery ${prior.delivery_id} (same signed ${event} payload); ignored`);
      return { status: 200, body: { duplicate: true, delivery, ...(prior && prior.delivery_id !== delivery ? { sameAs: prior.delivery_id } : {}), outcome: prior?.outcome ?? null } };
    }
    const outcome = await route(c, o, parsed, delivery);
    await c.query('update ops.webhook_deliveries set outcome = $2, project_id = $3 where delivery_id = $1', [delivery, outcome, outcome.projectId ?? null]);
    return { status: 202, body: { delivery, ...outcome } };
  });
}

type Outcome = { projectId?: string; ignored?: string; runs?: number[]; approval?: string; environment?: string; created?: boolean; comment?: boolean };

async function findProject(c: pg.PoolClient, repo: string): Promise<ProjectRow | undefined> {
  return (await c.query('select * from ops.projects where github_repo = $1', [repo])).rows[0];
}

async function queue(c: pg.PoolClient, envId: string, kind: string, params: object, key: string): Promise<number> {
  return (await c.query('select run_id from ops.queue_run($1, $2, $3, $4)', [envId, kind, params, key])).rows[0].run_id as number;
}

async function route(c: pg.PoolClient, o: WebhookOptions, e: Event, delivery: string): Promise<Outcome> {
  const event = e.event;
  if (event === 'ping') return { ignored: 'ping' };
  if ('p' in e) {
    const p = e.p;
    const project = await findProject(c, p.repository.full_name);
    if (!project) return { ignored: `no project for ${p.repository.full_name}` };
    if (!p.ref.startsWith('refs/heads/')) return { projectId: project.id, ignored: `${p.ref} is not a branch` };
    if (p.deleted || /^0+$/.test(p.after)) return { projectId: project.id, ignored: 'branch deletion (handled by the delete event)' };
    const branch = BranchName.safeParse(p.ref.slice('refs/heads/'.length));
    if (!branch.success) return { projectId: project.id, ignored: `branch name not accepted: ${branch.error.issues[0]!.message}` };
    if (!/^[0-9a-f]{40}$/.test(p.after)) return { projectId: project.id, ignored: 'no commit id' };
    return push(c, project, branch.data, p.after);
  }
  if ('d' in e) {
    const d = e.d;
    const project = await findProject(c, d.repository.full_name);
    if (!project) return { ignored: `no project for ${d.repository.full_name}` };
    if (d.ref_type !== 'branch') return { projectId: project.id, ignored: `a ${d.ref_type} was deleted` };
    const env = (await c.query(`select * from ops.environments where project_id = $1 and stage = 'development' and branch = $2 and archived_at is null`, [project.id, d.ref])).rows[0];
    if (!env) return { projectId: project.id, ignored: `no development environment for ${d.ref}` };
    return { projectId: project.id, environment: env.name, runs: [await queue(c, env.id, 'destroy', {}, `destroy:${env.id}`)] };
  }
  if ('pr' in e) {
    const pr = e.pr;
    const project = await findProject(c, pr.repository.full_name);
    if (!project) return { ignored: `no project for ${pr.repository.full_name}` };
    if (!['opened', 'reopened'].includes(pr.action)) return { projectId: project.id, ignored: `pull request ${pr.action}` };
    const env = (await c.query(`select * from ops.environments where project_id = $1 and branch = $2 and archived_at is null order by stage desc limit 1`, [project.id, pr.pull_request.head.ref])).rows[0];
    if (!env || !o.github || !project.github_repo) return { projectId: project.id, ignored: !env ? 'no environment for this branch yet' : 'no GitHub token configured' };
    const build = (await c.query(
      `select result from ops.runs where environment_id = $1 and kind = 'build' and result ->> 'revision' = $2 and status in ('succeeded', 'failed') order by id desc limit 1`,
      [env.id, pr.pull_request.head.sha])).rows[0]?.result as { tests?: { tests: number; failed: number; errors: number } } | undefined;
    const tests = build?.tests ? `\nTests of \`${pr.pull_request.head.sha.slice(0, 7)}\`: ${summaryLine(build.tests)}` : '';
    const body = `**OdooOps**: ${env.stage} environment \`${env.name}\` for \`${pr.pull_request.head.ref}\`${env.url ? `: ${env.url}` : ''}${tests}`;
    await o.github.comment(project.github_repo, pr.number, body).catch((err) => o.log(`github: could not comment on #${pr.number}: ${(err as Error).message}`));
    return { projectId: project.id, environment: env.name, comment: true };
  }
  return { ignored: `event ${event || '(none)'}` };
}

async function push(c: pg.PoolClient, project: ProjectRow, branch: string, sha: string): Promise<Outcome> {
  const params = { revision: sha, branch };
  if (branch === project.production_branch) {
    const env = (await c.query(`select * from ops.environments where project_id = $1 and stage = 'production' and archived_at is null order by name limit 1`, [project.id])).rows[0];
    if (!env) return { projectId: project.id, ignored: 'the project has no production environment' };
    if (project.production_needs_approval) {
      const { rows } = await c.query(
        `insert into ops.approvals (project_id, environment_id, kind, params, reason, requested_by) values ($1, $2, 'deploy', $3, $4, $5) returning id`,
        [project.id, env.id, params, `push of ${sha.slice(0, 7)} to ${branch}`, SERVICE_CLAIMS.sub]);
      return { projectId: project.id, environment: env.name, approval: rows[0].id };
    }
    return { projectId: project.id, environment: env.name, runs: [await queue(c, env.id, 'deploy', params, `deploy:${env.id}:${sha}`)] };
  }
  if (project.staging_branches.includes(branch)) {
    const env = (await c.query(`select * from ops.environments where project_id = $1 and stage = 'staging' and branch = $2 and archived_at is null`, [project.id, branch])).rows[0];
    if (!env) return { projectId: project.id, ignored: `no staging environment has the branch ${branch}` };
    const runs: number[] = [];
    // "New build": a fresh neutralized copy of production first; runs of one environment go in order.
    if (project.staging_mode === 'fresh') runs.push(await queue(c, env.id, 'clone', {}, `clone:${env.id}:${sha}`));
    runs.push(await queue(c, env.id, 'deploy', params, `deploy:${env.id}:${sha}`));
    // Tests on staging only when the project asks (build_staging); after the deploy, on the same commit.
    if (project.build_staging) runs.push(await queue(c, env.id, 'build', params, `build:${env.id}:${sha}`));
    return { projectId: project.id, environment: env.name, runs };
  }
  let env = await findDevEnvironment(c, project.id, branch);
  let created = false;
  if (!env) {
    env = await createDevEnvironment(c, project, branch);
    created = true;
  }
  // The deploy first (the developer's environment is up at once), then the build with its tests: runs of
  // one environment go in order, and the build has a database and checkout of its own.
  const runs = [await queue(c, env.id, 'deploy', params, `deploy:${env.id}:${sha}`), await queue(c, env.id, 'build', params, `build:${env.id}:${sha}`)];
  return { projectId: project.id, environment: env.name, created, runs };
}
