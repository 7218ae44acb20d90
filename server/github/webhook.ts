// GitHub webhooks → runs, as Odoo.sh maps branches to stages: the signature (X-Hub-Signature-256) is
// checked on the raw bytes before anything is parsed; a delivery id seen before does nothing; a push to
// the production branch deploys production (through an approval when the project asks for one), to a
// staging branch deploys (or first re-clones) its staging environment, to any other branch deploys a
// development environment created on its first push; deleting the branch destroys it. Pull requests
// get a comment with their development environment's URL.
import type { IncomingMessage } from 'node:http';
import { verify } from '@octokit/webhooks-methods';
import type pg from 'pg';
import { z } from 'zod';
import { BranchName } from '../../contract/index.ts';
import { asUser, SERVICE_CLAIMS } from '../db/session.ts';
import { HttpError } from '../api/errors.ts';
import type { ProjectRow } from '../rows.ts';
import type { GitHubFeedback } from './feedback.ts';
import { createDevEnvironment, findDevEnvironment } from '../deploy/dev-environment.ts';

export interface WebhookOptions {
  pool: pg.Pool;
  secret: string | undefined;
  github: GitHubFeedback | null;
  log: (m: string) => void;
}

const MAX_PAYLOAD = 25 * 1024 * 1024; // GitHub's own limit

const Repository = z.object({ full_name: z.string() });
const Push = z.object({ ref: z.string(), after: z.string(), deleted: z.boolean().optional(), repository: Repository });
const Delete = z.object({ ref: z.string(), ref_type: z.string(), repository: Repository });
const PullRequest = z.object({
  action: z.string(), number: z.number().int(), repository: Repository,
  pull_request: z.object({ head: z.object({ ref: z.string(), sha: z.string() }) }),
});

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
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'malformed_json', 'the payload is not JSON (set the webhook\'s content type to application/json)');
  }

  return asUser(o.pool, SERVICE_CLAIMS, async (c) => {
    const fresh = await c.query(`insert into ops.webhook_deliveries (delivery_id, event) values ($1, $2) on conflict do nothing returning delivery_id`, [delivery, event]);
    if (fresh.rowCount === 0) {
      const prior = (await c.query('select outcome from ops.webhook_deliveries where delivery_id = $1', [delivery])).rows[0]?.outcome;
      return { status: 200, body: { duplicate: true, delivery, outcome: prior ?? null } };
    }
    const outcome = await route(c, o, event, delivery, payload);
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

async function route(c: pg.PoolClient, o: WebhookOptions, event: string, delivery: string, payload: unknown): Promise<Outcome> {
  if (event === 'ping') return { ignored: 'ping' };
  if (event === 'push') {
    const p = Push.parse(payload);
    const project = await findProject(c, p.repository.full_name);
    if (!project) return { ignored: `no project for ${p.repository.full_name}` };
    if (!p.ref.startsWith('refs/heads/')) return { projectId: project.id, ignored: `${p.ref} is not a branch` };
    if (p.deleted || /^0+$/.test(p.after)) return { projectId: project.id, ignored: 'branch deletion (handled by the delete event)' };
    const branch = BranchName.safeParse(p.ref.slice('refs/heads/'.length));
    if (!branch.success) return { projectId: project.id, ignored: `branch name not accepted: ${branch.error.issues[0]!.message}` };
    if (!/^[0-9a-f]{40}$/.test(p.after)) return { projectId: project.id, ignored: 'no commit id' };
    return push(c, project, branch.data, p.after);
  }
  if (event === 'delete') {
    const d = Delete.parse(payload);
    const project = await findProject(c, d.repository.full_name);
    if (!project) return { ignored: `no project for ${d.repository.full_name}` };
    if (d.ref_type !== 'branch') return { projectId: project.id, ignored: `a ${d.ref_type} was deleted` };
    const env = (await c.query(`select * from ops.environments where project_id = $1 and stage = 'development' and branch = $2 and archived_at is null`, [project.id, d.ref])).rows[0];
    if (!env) return { projectId: project.id, ignored: `no development environment for ${d.ref}` };
    return { projectId: project.id, environment: env.name, runs: [await queue(c, env.id, 'destroy', {}, `destroy:${env.id}`)] };
  }
  if (event === 'pull_request') {
    const pr = PullRequest.parse(payload);
    const project = await findProject(c, pr.repository.full_name);
    if (!project) return { ignored: `no project for ${pr.repository.full_name}` };
    if (!['opened', 'reopened'].includes(pr.action)) return { projectId: project.id, ignored: `pull request ${pr.action}` };
    const env = (await c.query(`select * from ops.environments where project_id = $1 and branch = $2 and archived_at is null order by stage desc limit 1`, [project.id, pr.pull_request.head.ref])).rows[0];
    if (!env || !o.github || !project.github_repo) return { projectId: project.id, ignored: !env ? 'no environment for this branch yet' : 'no GitHub token configured' };
    const body = `**OdooOps**: ${env.stage} environment \`${env.name}\` for \`${pr.pull_request.head.ref}\`${env.url ? `: ${env.url}` : ''}`;
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
    return { projectId: project.id, environment: env.name, runs };
  }
  let env = await findDevEnvironment(c, project.id, branch);
  let created = false;
  if (!env) {
    env = await createDevEnvironment(c, project, branch);
    created = true;
  }
  return { projectId: project.id, environment: env.name, created, runs: [await queue(c, env.id, 'deploy', params, `deploy:${env.id}:${sha}`)] };
}
