// The HTTP API. Every handler validates its input with the contract's zod schemas and runs its SQL
// as the calling user (asUser), so row level security and the ops functions decide what is allowed.
import type { Readable } from 'node:stream';
import type pg from 'pg';
import { firstComplete, type BackupStores } from '../storage/store-of.ts';
import { odooZip } from '../odoo/odoo-zip.ts';
import { FilestoreObjectDamaged, filestoreTar, isObjects } from '../storage/filestore-objects.ts';
import { z } from 'zod';
import * as C from '../../contract/index.ts';
import { asUser, type Claims } from '../db/session.ts';
import { backupFilesMissing, HttpError, notFound } from './errors.ts';
import { checkDeclaredSize, DEFAULT_IMPORT_LIMITS, receiveImport } from './import-upload.ts';
import { createDevEnvironment, devEnvironmentName, findDevEnvironment } from '../deploy/dev-environment.ts';
import { parseMaskProfile, projectMaskProfile } from '../odoo/mask.ts';
import { floorDescriptions, floorViolations, tightenProfile, weakenedHint, weakenedMessage, withFloors } from '../odoo/mask-policy.ts';
import { checkRunParams } from './run-checks.ts';
import { mailRoutes } from './mail-routes.ts';
import { ENV_SELECT, PROJECT_SELECT, RUN_SELECT, toAlert, toApproval, toAudit, toBackup, toEnvironment, toInfra, toInvitation, toMember, toProject, toRun } from './mappers.ts';

export interface RequestContext {
  pool: pg.Pool;
  /** Where backups are read from (downloads) and uploads kept; absent on a server without them. */
  backupStores?: BackupStores;
  claims: Claims;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  /** Raw routes only: the request, its body unread. */
  request?: import('node:http').IncomingMessage;
  importLimits?: import('./import-upload.ts').ImportLimits;
}
export interface Reply {
  status?: number;
  body?: unknown;
  /** A streamed response instead of JSON. */
  stream?: { readable: Readable; headers: Record<string, string> };
}
type Handler = (ctx: RequestContext) => Promise<Reply>;
export interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
  /** The handler reads the body itself (streamed uploads); it is not parsed as JSON. */
  raw?: boolean;
}

const RunId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const P = '(?<project>[^/]+)';
const E = '(?<env>[^/]+)';
const route = (method: string, path: string, handler: Handler): Route => ({ method, pattern: new RegExp(`^${path}$`), handler });

async function findProject(c: pg.PoolClient, slug: string) {
  const parsed = C.ProjectSlug.safeParse(slug);
  if (!parsed.success) throw new HttpError(400, 'invalid_request', `project "${slug}": ${parsed.error.issues[0]!.message}`);
  const { rows } = await c.query(`${PROJECT_SELECT} where p.slug = $1`, [slug]);
  if (!rows[0]) throw notFound(`project "${slug}"`);
  return rows[0] as { id: string; slug: string; role: C.Role };
}

async function findEnvironment(c: pg.PoolClient, slug: string, name: string) {
  const project = await findProject(c, slug);
  const parsed = C.EnvironmentName.safeParse(name);
  if (!parsed.success) throw new HttpError(400, 'invalid_request', `environment "${name}": ${parsed.error.issues[0]!.message}`);
  const { rows } = await c.query(`${ENV_SELECT} where e.project_id = $1 and e.name = $2`, [project.id, name]);
  if (!rows[0]) throw notFound(`environment "${name}" in project "${slug}"`);
  return { project, env: rows[0] as Record<string, any> };
}

async function getRun(c: pg.PoolClient, id: number) {
  const { rows } = await c.query(`${RUN_SELECT} where r.id = $1`, [id]);
  if (!rows[0]) throw notFound(`run ${id}`);
  return rows[0];
}

/** Whether the caller's role may operate on the project's environments of that stage (RLS's rule). */
async function canOperate(c: pg.PoolClient, projectId: string, stage: C.Stage): Promise<boolean> {
  return (await c.query('select ops.can_operate($1, $2) as ok', [projectId, stage])).rows[0].ok as boolean;
}

/** An audit entry for what the tables' triggers do not see (a backup's data leaving the server). */
async function audit(pool: pg.Pool, claims: Claims, projectId: string, action: string, target: string, details: object): Promise<void> {
  await pool.query(
    `insert into ops.audit_log (actor, actor_role, project_id, action, target, details) values ($1, 'authenticated', $2, $3, $4, $5)`,
    [claims.sub, projectId, action, target, JSON.stringify(details)],
  );
}

/** A registry entry bound to the project, or a 400 that says what exists. */
async function bound(c: pg.PoolClient, project: { id: string; slug: string }, kind: C.InfraKind, name: string): Promise<C.InfraEntry> {
  const { rows } = await c.query(
    `select * from ops.infrastructure i where i.kind = $1 and ($2 = any (i.projects) or '*' = any (i.projects)) order by i.name`, [kind, project.slug]);
  const found = rows.find((r) => r.name === name);
  if (!found) {
    const what = kind.replace('_', ' ');
    throw new HttpError(400, 'unknown_infrastructure', `${project.slug} has no ${what} "${name}"${rows.length ? ` (it may use: ${rows.map((r) => r.name).join(', ')})` : ''}`,
      `The operator declares ${what}s and binds them to projects in the registry; odooops infra list ${project.slug} shows what this project may use.`);
  }
  return toInfra(found, false);
}

/**
 * The stores of a backup (row with project_slug and stores) this server's registry resolves, or a 503 that
 * says why none does (the registry names, never a path or a bucket).
 */
function backupStoresOf(backupStores: BackupStores | undefined, backup: { id: string; project_slug: string; stores?: string[] }) {
  if (!backupStores) throw new HttpError(503, 'no_backup_store', 'this server has no backup store; use a server that runs workers');
  const { stores, problems } = backupStores.resolve(backup.project_slug, backup.stores ?? ['default']);
  if (!stores.length) {
    throw new HttpError(503, 'backup_store_unavailable', `backup ${backup.id} is in no store this server can use: ${problems.join('; ')}`,
      'The operator declares backup stores in this server\'s registry (backupStores:) and binds them to the project; odooops infra check tells whether they can be reached.');
  }
  return stores;
}

/** The lowest port of a local runtime's range that no live environment of that runtime uses. */
async function freePort(c: pg.PoolClient, runtime: string, except: string): Promise<number> {
  const { rows } = await c.query(`select ops.free_http_port($1, $2) as p`, [runtime, except]);
  if (rows[0].p === null) throw new HttpError(409, 'no_free_port', `every port of the runtime ${runtime} is taken`, 'Ask the operator for a wider httpPorts range, or archive an environment.');
  return rows[0].p as number;
}

/** A unique index of environments, as a 409 that says which. */
function uniqueClash(err: unknown): never {
  const e = err as { code?: string; constraint?: string };
  const what: Record<string, string> = {
    environments_one_database: 'another environment already manages this database on that server',
    environments_one_filestore: 'another environment already uses this database name in that filestore root',
    environments_project_id_name_key: 'an environment of that name already exists in the project',
    environments_one_port: 'another environment already listens on that port of the runtime; leave --http-port out to get a free one',
  };
  if (e.code === '23505' && e.constraint && what[e.constraint]) throw new HttpError(409, 'conflict', what[e.constraint]!);
  throw err;
}

async function requireInstanceAdmin(c: pg.PoolClient, what: string): Promise<void> {
  if (!(await c.query('select ops.is_instance_admin() as ok')).rows[0].ok) {
    throw new HttpError(403, 'forbidden', `only instance admins can ${what}`,
      'An instance admin grants the right: odooops admin grant <your user id> (odooops whoami shows it).');
  }
}

function requireAdmin(project: { role: C.Role | null; slug: string }, what: string) {
  if (project.role !== 'admin') {
    throw new HttpError(403, 'forbidden', `only admins of "${project.slug}" can ${what}; you are ${project.role ?? 'not a member'}`);
  }
}

export const routes: Route[] = [
  route('GET', '/api/me', async ({ pool, claims }) =>
    asUser(pool, claims, async (c) => {
      const user = (await c.query('select name, github_login from ops.users where id = $1', [claims.sub])).rows[0];
      const me: C.Me = {
        userId: claims.sub, email: (claims.email as string | undefined) ?? null, role: claims.role,
        instanceAdmin: (await c.query('select ops.is_instance_admin() as ok')).rows[0].ok as boolean,
        name: user?.name ?? user?.github_login ?? null, githubLogin: user?.github_login ?? null,
      };
      return { body: me };
    }),
  ),

  // Instance admins: who may create projects (and see the whole registry) -------------------------
  route('GET', '/api/admin/instance-admins', async ({ pool, claims }) =>
    asUser(pool, claims, async (c) => {
      await requireInstanceAdmin(c, 'list instance admins');
      const { rows } = await c.query('select * from ops.instance_admins order by added_at');
      return { body: rows.map((r): C.InstanceAdmin => ({ userId: r.user_id, addedBy: r.added_by ?? null, addedAt: r.added_at.toISOString() })) };
    }),
  ),
  route('POST', '/api/admin/instance-admins', async ({ pool, claims, body }) => {
    const input = C.GrantInstanceAdmin.parse(body);
    return asUser(pool, claims, async (c) => {
      await requireInstanceAdmin(c, 'grant the right to create projects');
      const { rows } = await c.query('insert into ops.instance_admins (user_id) values ($1) on conflict do nothing returning *', [input.userId]);
      const r = rows[0] ?? (await c.query('select * from ops.instance_admins where user_id = $1', [input.userId])).rows[0];
      return { status: rows[0] ? 201 : 200, body: { userId: r.user_id, addedBy: r.added_by ?? null, addedAt: r.added_at.toISOString() } satisfies C.InstanceAdmin };
    });
  }),
  route('DELETE', '/api/admin/instance-admins/(?<user>[^/]+)', async ({ pool, claims, params }) => {
    const userId = C.Uuid.parse(params.user);
    return asUser(pool, claims, async (c) => {
      await requireInstanceAdmin(c, 'revoke the right to create projects');
      const { rowCount } = await c.query('delete from ops.instance_admins where user_id = $1', [userId]);
      if (!rowCount) throw notFound(`instance admin ${userId}`);
      return { status: 204, body: null };
    });
  }),
  // The operator's registry: all of it for instance admins, what is bound to a project for its members.
  route('GET', '/api/infrastructure', async ({ pool, claims }) =>
    asUser(pool, claims, async (c) => {
      await requireInstanceAdmin(c, 'read the whole infrastructure registry');
      const { rows } = await c.query('select * from ops.infrastructure order by kind, name');
      return { body: rows.map((r) => toInfra(r, true)) };
    }),
  ),

  // Projects ---------------------------------------------------------------------------------------
  route('GET', '/api/projects', async ({ pool, claims }) =>
    asUser(pool, claims, async (c) => {
      const { rows } = await c.query(`${PROJECT_SELECT} order by p.slug`);
      return { body: rows.map(toProject) };
    }),
  ),
  route('POST', '/api/projects', async ({ pool, claims, body }) => {
    const input = C.CreateProject.parse(body);
    return asUser(pool, claims, async (c) => {
      await requireInstanceAdmin(c, 'create projects');
      // No RETURNING: the new row only becomes visible to its creator once the after-insert trigger
      // has made them admin, and RETURNING is checked against the select policy before that.
      await c.query('insert into ops.projects (slug, name) values ($1, $2)', [input.slug, input.name]);
      return { status: 201, body: toProject(await findProject(c, input.slug)) };
    });
  }),
  route('GET', `/api/projects/${P}`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => ({ body: toProject(await findProject(c, params.project!)) })),
  ),
  // A project's settings; its clone password is a registry secret's name, bound to it by the operator.
  route('PATCH', `/api/projects/${P}`, async ({ pool, claims, params, body }) => {
    const input = C.UpdateProject.parse(body);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'change its settings');
      if (input.clonePasswordSecret) await bound(c, project, 'secret', input.clonePasswordSecret);
      // Where backups go is the operator's to offer (the registry binds stores) and a project admin's to pick.
      if (input.backupStore) await bound(c, project, 'backup_store', input.backupStore);
      if (input.backupCopy) await bound(c, project, 'backup_store', input.backupCopy);
      const current = project as unknown as { backup_store: string; backup_copy: string | null };
      if (input.backupStore !== undefined || input.backupCopy !== undefined) {
        const [store, copy] = [input.backupStore ?? current.backup_store, input.backupCopy === undefined ? current.backup_copy : input.backupCopy];
        if (store === copy) throw new HttpError(400, 'invalid_request', `the backup copy must go to another store than the backups themselves ("${store}")`, 'Pick another store for the copy (odooops infra list PROJECT), or --no-backup-copy.');
      }
      const set = ([['name', input.name], ['clone_password_secret', input.clonePasswordSecret], ['backup_store', input.backupStore], ['backup_copy', input.backupCopy]] as [string, unknown][])
        .filter(([, v]) => v !== undefined);
      if (!set.length) throw new HttpError(400, 'invalid_request', 'nothing to change: give name, clonePasswordSecret, backupStore or backupCopy');
      await c.query(`update ops.projects set ${set.map(([k], i) => `${k} = $${i + 2}`).join(', ')} where id = $1`, [project.id, ...set.map(([, v]) => v)]);
      return { body: toProject(await findProject(c, project.slug)) };
    });
  }),
  route('DELETE', `/api/projects/${P}`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'delete the project');
      await c.query('delete from ops.projects where id = $1', [project.id]);
      return { status: 204, body: null };
    }),
  ),

  // Members ----------------------------------------------------------------------------------------
  route('GET', `/api/projects/${P}/members`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      // ops.users rows are visible to the people who share a project with them (RLS); their email only
      // to name someone who has no other name (ops.unnamed_member_email).
      const { rows } = await c.query(`select m.*, u.name as user_name, u.github_login, ops.unnamed_member_email(m.user_id) as user_email from ops.project_members m
        left join ops.users u on u.id = m.user_id where m.project_id = $1 order by m.added_at`, [project.id]);
      return { body: rows.map(toMember) };
    }),
  ),
  route('POST', `/api/projects/${P}/members`, async ({ pool, claims, params, body }) => {
    const input = C.AddMember.parse(body);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'add members');
      const { rows } = await c.query(
        'insert into ops.project_members (project_id, user_id, role, display_name) values ($1, $2, $3, $4) returning *',
        [project.id, input.userId, input.role, input.displayName ?? null],
      );
      return { status: 201, body: toMember(rows[0]) };
    });
  }),
  route('PATCH', `/api/projects/${P}/members/(?<user>[^/]+)`, async ({ pool, claims, params, body }) => {
    const input = C.UpdateMember.parse(body);
    const userId = C.Uuid.parse(params.user);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'change roles');
      const { rows } = await c.query('update ops.project_members set role = $3 where project_id = $1 and user_id = $2 returning *', [
        project.id, userId, input.role,
      ]);
      if (!rows[0]) throw notFound(`member ${userId}`);
      return { body: toMember(rows[0]) };
    });
  }),
  route('DELETE', `/api/projects/${P}/members/(?<user>[^/]+)`, async ({ pool, claims, params }) => {
    const userId = C.Uuid.parse(params.user);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'remove members');
      const { rowCount } = await c.query('delete from ops.project_members where project_id = $1 and user_id = $2', [project.id, userId]);
      if (!rowCount) throw notFound(`member ${userId}`);
      return { status: 204, body: null };
    });
  }),

  // Invitations: admins invite by GitHub login or email; the first sign-in that matches joins ------
  route('GET', `/api/projects/${P}/invitations`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'see its invitations');
      const { rows } = await c.query(`select i.*, $2::text as project_slug from ops.invitations i where i.project_id = $1
        order by i.accepted_at is not null, i.created_at desc limit 500`, [project.id, project.slug]);
      return { body: rows.map(toInvitation) };
    }),
  ),
  route('POST', `/api/projects/${P}/invitations`, async ({ pool, claims, params, body }) => {
    const input = C.InvitationInput.parse(body);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'invite people');
      const who = input.githubLogin ?? input.email!;
      const column = input.githubLogin ? 'github_login' : 'email';
      // By login only: members' email addresses are not for other members to read.
      const { rows: members } = input.githubLogin ? await c.query(`select 1 from ops.project_members m join ops.users u on u.id = m.user_id
        where m.project_id = $1 and lower(u.github_login) = lower($2)`, [project.id, who]) : { rows: [] };
      if (members.length) throw new HttpError(409, 'already_member', `${who} is already a member of ${project.slug}`, `Change their role instead: odooops member set-role ${project.slug} USER_ID ROLE (odooops member list ${project.slug} shows them).`);
      // Inviting again replaces the pending invitation (a new role, 14 more days).
      const { rowCount: replaced } = await c.query(`delete from ops.invitations where project_id = $1 and lower(${column}) = lower($2) and accepted_at is null`, [project.id, who]);
      const { rows } = await c.query(`insert into ops.invitations (project_id, ${column}, role) values ($1, $2, $3) returning *, $4::text as project_slug`,
        [project.id, who, input.role, project.slug]);
      return { status: replaced ? 200 : 201, body: toInvitation(rows[0]) };
    });
  }),
  route('DELETE', `/api/projects/${P}/invitations/(?<invitation>[^/]+)`, async ({ pool, claims, params }) => {
    const id = C.Uuid.parse(params.invitation);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'withdraw invitations');
      const { rowCount } = await c.query('delete from ops.invitations where project_id = $1 and id = $2', [project.id, id]);
      if (!rowCount) throw notFound(`invitation ${id} in project "${project.slug}"`);
      return { status: 204, body: null };
    });
  }),

  // Environments -----------------------------------------------------------------------------------
  route('GET', `/api/projects/${P}/environments`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      const { rows } = await c.query(
        `${ENV_SELECT} where e.project_id = $1 and e.archived_at is null order by array_position(array['production','staging','development']::ops.stage[], e.stage), e.name`,
        [project.id],
      );
      return { body: rows.map(toEnvironment) };
    }),
  ),
  // Git settings and deploy targets decide what a worker fetches and executes: admins only.
  route('PUT', `/api/projects/${P}/git`, async ({ pool, claims, params, body }) => {
    const input = C.ProjectGit.parse(body);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'change its git settings');
      const cols: [string, unknown][] = [
        ['repo_url', input.repoUrl], ['github_repo', input.githubRepo], ['production_branch', input.productionBranch],
        ['staging_branches', input.stagingBranches], ['staging_mode', input.stagingMode], ['production_needs_approval', input.productionNeedsApproval],
        ['dev_url_template', input.devUrlTemplate],
        ['build_staging', input.buildStaging],
      ];
      const set = cols.filter(([, v]) => v !== undefined);
      if (set.length) {
        try {
          await c.query(`update ops.projects set ${set.map(([k], i) => `${k} = $${i + 2}`).join(', ')} where id = $1`, [project.id, ...set.map(([, v]) => v)]);
        } catch (err) {
          if ((err as { code?: string }).code === '23505') throw new HttpError(409, 'conflict', `another project already uses the GitHub repository ${input.githubRepo}`);
          throw err;
        }
      }
      const r = (await c.query('select * from ops.projects where id = $1', [project.id])).rows[0];
      const out: C.ProjectGitSettings = {
        repoUrl: r.repo_url, githubRepo: r.github_repo, productionBranch: r.production_branch, stagingBranches: r.staging_branches,
        stagingMode: r.staging_mode, productionNeedsApproval: r.production_needs_approval, devUrlTemplate: r.dev_url_template,
        buildStaging: r.build_staging,
      };
      return { body: out };
    });
  }),
  route('GET', `/api/projects/${P}/infrastructure`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      const { rows } = await c.query(
        `select * from ops.infrastructure i where $1 = any (i.projects) or '*' = any (i.projects) order by kind, name`, [project.slug]);
      return { body: rows.map((r) => toInfra(r, false)) };
    }),
  ),
  // Masking is the project's policy: members read it, admins set it (audited by the projects trigger).
  route('GET', `/api/projects/${P}/masking`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => ({ body: await projectMasking(c, (await findProject(c, params.project!)).id) })),
  ),
  route('PUT', `/api/projects/${P}/masking`, async ({ pool, claims, params, body }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'change its masking profile (the profile every clone of its production uses)');
      const profile = C.MaskProfile.parse(body);
      const lowered = floorViolations(profile);
      if (lowered.length) {
        throw new HttpError(400, 'masking_floor', `no profile can lower these: ${lowered.join(', ')}`,
          'drop those rules (or set them to null): production password hashes and TOTP secrets never leave production, and each clone gives its admin and internal users the clone password of the project');
      }
      await c.query('update ops.projects set mask_profile = $2 where id = $1', [project.id, profile]);
      return { body: await projectMasking(c, project.id) };
    }),
  ),
  route('DELETE', `/api/projects/${P}/masking`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'change its masking profile');
      await c.query('update ops.projects set mask_profile = null where id = $1', [project.id]);
      return { body: await projectMasking(c, project.id) };
    }),
  ),
  route('PUT', `/api/projects/${P}/environments/${E}/deploy-target`, async ({ pool, claims, params, body }) => {
    const target = C.DeployTarget.parse(body);
    return asUser(pool, claims, async (c) => {
      const { project, env } = await findEnvironment(c, params.project!, params.env!);
      requireAdmin(project, `choose how ${env.name} runs Odoo`);
      const runtime = await bound(c, project, 'runtime', target.runtime);
      let port = target.httpPort ?? null;
      if (runtime.details.kind === 'local' && port === null) port = await freePort(c, target.runtime, env.id);
      await c.query('update ops.environments set runtime = $2, http_port = $3 where id = $1', [env.id, target.runtime, port]).catch(uniqueClash);
      const { rows } = await c.query(`${ENV_SELECT} where e.id = $1`, [env.id]);
      return { body: toEnvironment(rows[0]) };
    });
  }),
  route('POST', `/api/projects/${P}/environments`, async ({ pool, claims, params, body }) => {
    const input = C.CreateEnvironment.parse(body);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      if (!(await canOperate(c, project.id, input.stage))) {
        throw new HttpError(403, 'forbidden', `your role in ${project.slug} (${project.role ?? 'not a member'}) cannot create ${input.stage} environments`);
      }
      requireAdmin(project, 'choose an environment\'s database server and filestore (developers create theirs from a branch: odooops env create-dev)');
      await bound(c, project, 'database_server', input.database.server);
      if (input.filestore) await bound(c, project, 'filestore_root', input.filestore);
      const { rows } = await c.query(
        `insert into ops.environments (project_id, name, stage, branch, url, db_server, db_name, filestore_root)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning *`,
        [project.id, input.name, input.stage, input.branch ?? null, input.url ?? null, input.database.server, input.database.name, input.filestore ?? null],
      ).catch(uniqueClash);
      return { status: 201, body: toEnvironment({ ...rows[0], project_slug: project.slug }) };
    });
  }),
  route('PATCH', `/api/projects/${P}/environments/${E}`, async ({ pool, claims, params, body }) => {
    const input = C.UpdateEnvironment.parse(body);
    return asUser(pool, claims, async (c) => {
      const { project, env } = await findEnvironment(c, params.project!, params.env!);
      if (!(await canOperate(c, project.id, env.stage))) {
        throw new HttpError(403, 'forbidden', `your role in ${project.slug} (${project.role ?? 'not a member'}) cannot change ${env.stage} environments`);
      }
      if (input.database || input.filestore !== undefined) requireAdmin(project, `change where ${env.name}'s database and filestore are`);
      if (input.database?.server) await bound(c, project, 'database_server', input.database.server);
      if (input.filestore) await bound(c, project, 'filestore_root', input.filestore);
      const cols: [string, unknown][] = [
        ['branch', input.branch], ['url', input.url], ['db_server', input.database?.server], ['db_name', input.database?.name], ['filestore_root', input.filestore],
      ];
      const set = cols.filter(([, v]) => v !== undefined);
      if (!set.length) throw new HttpError(400, 'invalid_request', 'nothing to change: give at least one setting');
      await c.query(`update ops.environments set ${set.map(([k], i) => `${k} = $${i + 2}`).join(', ')} where id = $1`, [env.id, ...set.map(([, v]) => v)])
        .catch(uniqueClash);
      const { rows } = await c.query(`${ENV_SELECT} where e.id = $1`, [env.id]);
      return { body: toEnvironment(rows[0]) };
    });
  }),
  route('POST', `/api/projects/${P}/dev-environments`, async ({ pool, claims, params, body }) => {
    const input = C.CreateDevEnvironment.parse(body);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      if (!(await canOperate(c, project.id, 'development'))) {
        throw new HttpError(403, 'forbidden', `your role in ${project.slug} (${project.role ?? 'not a member'}) cannot create development environments; a developer or an admin can`);
      }
      const full = (await c.query('select * from ops.projects where id = $1', [project.id])).rows[0];
      const then = input.then ?? (full.repo_url ? 'deploy' : 'nothing');
      if (then === 'deploy' && !full.repo_url) {
        throw new HttpError(409, 'no_repository', `${project.slug} has no repository to deploy ${input.branch} from`,
          `set it: odooops project git ${project.slug} --repo-url <url>, or create the environment with a clone of production instead`);
      }
      let env = await findDevEnvironment(c, project.id, input.branch);
      const created = !env;
      if (!env) {
        // The new environment copies production's database server, filestore root and runtime, which only
        // admins and the service choose; the user's right was checked above (the audit still names them),
        // and the run below is queued as the user again.
        await c.query(`select set_config('role', 'service_role', true), set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ ...claims, role: 'service_role' })]);
        try {
          env = await createDevEnvironment(c, full, input.branch);
        } catch (err) {
          // createDevEnvironment takes a free name ("-2"...): a clash is another request that took it a moment
          // ago. A database, filestore or port taken meanwhile is said as such.
          if ((err as { constraint?: string }).constraint !== 'environments_project_id_name_key') uniqueClash(err);
          throw new HttpError(409, 'conflict', `another environment of ${project.slug} took the name ${devEnvironmentName(input.branch)} a moment ago`, 'try again');
        }
        await c.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`, [JSON.stringify(claims)]);
      }
      let run = null;
      if (then !== 'nothing') {
        const { rows } = await c.query('select run_id from ops.queue_run($1, $2, $3)', [env.id, then, JSON.stringify(then === 'deploy' ? { branch: input.branch } : {})]);
        run = toRun(await getRun(c, rows[0].run_id));
      }
      const { rows } = await c.query(`${ENV_SELECT} where e.id = $1`, [env.id]);
      const result: C.DevEnvironment = { environment: toEnvironment(rows[0]), created, run };
      // The environment's insert is audited by its trigger, as the user.
      return { status: created ? 201 : 200, body: result };
    });
  }),
  // How to log in to the environment's latest clone: for those who may operate it (RLS), audited.
  route('GET', `/api/projects/${P}/environments/${E}/clone-login`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const { project, env } = await findEnvironment(c, params.project!, params.env!);
      if (!(await canOperate(c, project.id, env.stage))) {
        throw new HttpError(403, 'forbidden', `your role in ${project.slug} (${project.role ?? 'not a member'}) cannot log in to ${env.stage} environments; a member who may operate ${env.name} can`);
      }
      const { rows } = await c.query('select * from ops.clone_logins where environment_id = $1', [env.id]);
      if (!rows[0]) {
        throw new HttpError(404, 'no_clone', `${env.name} has not been cloned since OdooOps records clone logins`,
          `clone it: odooops run queue ${project.slug} ${env.name} clone --follow`);
      }
      const r = rows[0];
      if (r.password) await audit(pool, claims, project.id, 'clone.login.read', env.name, { run: Number(r.run_id) });
      const body: C.CloneLogin = {
        environment: env.name, runId: Number(r.run_id), createdAt: r.created_at.toISOString(), logins: r.logins,
        password: r.password ?? null, passwordSecret: r.password_secret ?? null,
      };
      return { body };
    })),
  route('GET', `/api/projects/${P}/environments/${E}`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => ({ body: toEnvironment((await findEnvironment(c, params.project!, params.env!)).env) })),
  ),
  route('DELETE', `/api/projects/${P}/environments/${E}`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const { env } = await findEnvironment(c, params.project!, params.env!);
      const { rowCount } = await c.query('delete from ops.environments where id = $1', [env.id]);
      if (!rowCount) throw new HttpError(403, 'forbidden', `your role cannot delete ${env.stage} environments`);
      return { status: 204, body: null };
    }),
  ),

  // Runs -------------------------------------------------------------------------------------------
  route('POST', `/api/projects/${P}/environments/${E}/runs`, async ({ pool, claims, params, body }) => {
    const input = C.QueueRun.parse(body);
    return asUser(pool, claims, async (c) => {
      const { env, project } = await findEnvironment(c, params.project!, params.env!);
      await checkRunParams(c, { project, env: env as { id: string; name: string; stage: string } }, input.kind, input.params);
      if (input.kind === 'clone') await checkCloneProfile(c, project, input.params.profile);
      const { rows } = await c.query('select * from ops.queue_run($1, $2, $3, $4, $5, $6)', [
        env.id, input.kind, JSON.stringify(input.params), input.idempotencyKey ?? null, input.approvalId ?? null, input.maxAttempts ?? 3,
      ]);
      const { run_id, created } = rows[0] as { run_id: number; created: boolean };
      return { status: created ? 201 : 200, body: toRun(await getRun(c, run_id)) };
    });
  }),
  route('GET', '/api/runs', async ({ pool, claims, query }) => {
    const q = C.ListRunsQuery.parse(query);
    return asUser(pool, claims, async (c) => {
      const where: string[] = [];
      const args: unknown[] = [];
      const add = (sql: string, v: unknown) => {
        args.push(v);
        where.push(sql.replace('?', `$${args.length}`));
      };
      if (q.project) add('p.slug = ?', q.project);
      if (q.environment) add('e.name = ?', q.environment);
      if (q.status) add('r.status = ?', q.status);
      if (q.before) add('r.id < ?', q.before);
      args.push(q.limit);
      const { rows } = await c.query(
        `${RUN_SELECT} ${where.length ? `where ${where.join(' and ')}` : ''} order by r.id desc limit $${args.length}`,
        args,
      );
      return { body: rows.map(toRun) };
    });
  }),
  route('GET', '/api/runs/(?<id>[^/]+)', async ({ pool, claims, params }) => {
    const id = RunId.parse(params.id);
    return asUser(pool, claims, async (c) => ({ body: toRun(await getRun(c, id)) }));
  }),
  route('POST', '/api/runs/(?<id>[^/]+)/cancel', async ({ pool, claims, params }) => {
    const id = RunId.parse(params.id);
    return asUser(pool, claims, async (c) => {
      await c.query('select ops.cancel_run($1)', [id]);
      return { body: toRun(await getRun(c, id)) };
    });
  }),
  route('POST', '/api/runs/(?<id>[^/]+)/retry', async ({ pool, claims, params, body }) => {
    const id = RunId.parse(params.id);
    C.RetryRun.parse(body ?? {});
    return asUser(pool, claims, async (c) => {
      await c.query('select ops.retry_run($1)', [id]);
      // What the params name may be gone since it was queued (a backup retention deleted): checked as at
      // queue time, and a refusal rolls the retry back.
      const run = toRun(await getRun(c, id));
      const { project, env } = await findEnvironment(c, run.project, run.environment);
      await checkRunParams(c, { project, env: env as { id: string; name: string; stage: string } }, run.kind, run.params);
      return { body: run };
    });
  }),
  route('GET', '/api/runs/(?<id>[^/]+)/logs', async ({ pool, claims, params, query }) => {
    const id = RunId.parse(params.id);
    const q = C.LogsQuery.parse(query);
    return asUser(pool, claims, async (c) => {
      const run = await getRun(c, id);
      const { rows } = await c.query(
        'select seq, ts, stream, line from ops.run_logs where run_id = $1 and seq > $2 order by seq limit $3',
        [id, q.after, q.limit],
      );
      const lines = rows.map((r) => ({ seq: r.seq, ts: r.ts.toISOString(), stream: r.stream, line: r.line }));
      const page: C.LogPage = { runId: id, lines, nextAfter: lines.at(-1)?.seq ?? q.after, status: run.status };
      return { body: page };
    });
  }),

  // Backups ----------------------------------------------------------------------------------------
  route('GET', `/api/projects/${P}/environments/${E}/backups`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const { env } = await findEnvironment(c, params.project!, params.env!);
      const { rows } = await c.query(
        `select b.*, $2::text as environment_name from ops.backups b where b.environment_id = $1 order by b.created_at desc`,
        [env.id, env.name],
      );
      return { body: rows.map(toBackup) };
    })),
  route('GET', '/api/backups/(?<id>[^/]+)/download', async ({ pool, claims, params, query, backupStores }) => {
    const id = C.Uuid.safeParse(params.id);
    if (!id.success) throw notFound(`backup ${params.id}`);
    const format = z.enum(['odoo-zip']).default('odoo-zip').parse(query.format);
    const backup = await asUser(pool, claims, async (c) => {
      const { rows } = await c.query(
        `select b.*, e.name as environment_name, e.stage, p.slug as project_slug, ops.can_operate(b.project_id, e.stage) as allowed
         from ops.backups b join ops.environments e on e.id = b.environment_id join ops.projects p on p.id = b.project_id where b.id = $1`,
        [id.data],
      );
      if (!rows[0]) throw notFound(`backup ${id.data}`);
      // A backup holds all of an environment's data: only those who may operate on it may take it away.
      if (!rows[0].allowed) throw new HttpError(403, 'forbidden', `your role cannot download backups of ${rows[0].stage} environments`);
      return rows[0];
    });
    const manifest = C.BackupManifest.parse(backup.manifest);
    // Every part, before any header: once the zip's headers are out, a missing part can only cut it short.
    const { store: backupStore, missing, unreachable } = await firstComplete(backupStoresOf(backupStores, backup), manifest, backup.project_id);
    if (!backupStore && !missing.length) throw new HttpError(503, 'backup_store_unavailable', `backup ${id.data}: ${unreachable.join('; ')}`, 'Try again later; the operator can check the store with odooops infra check.');
    if (!backupStore) {
      throw backupFilesMissing(`backup ${id.data} cannot be downloaded`, missing,
        `Download or restore another backup of ${backup.environment_name} (odooops backup list ${backup.project_slug} ${backup.environment_name}), or take a new one (odooops run queue ${backup.project_slug} ${backup.environment_name} backup).`);
    }
    const name = C.backupFileName(manifest.database, backup.created_at.toISOString());
    await audit(pool, claims, backup.project_id, 'backup.download', String(id.data), { format, environment: backup.environment_name });
    return {
      stream: {
        readable: await odooZip(backupStore, manifest, backup.project_id),
        headers: { 'content-type': 'application/zip', 'content-disposition': `attachment; filename="${name}"` },
      },
    };
  }),

  // Verify: re-reads a backup and checks every checksum, on the backup's environment (queue_run decides
  // who may: those who may back that environment up).
  route('POST', '/api/backups/(?<id>[^/]+)/verify', async ({ pool, claims, params }) => {
    const id = C.Uuid.safeParse(params.id);
    if (!id.success) throw notFound(`backup ${params.id}`);
    return asUser(pool, claims, async (c) => {
      const { rows } = await c.query(
        `select b.id, b.environment_id, e.name as environment_name from ops.backups b join ops.environments e on e.id = b.environment_id where b.id = $1`, [id.data]);
      if (!rows[0]) throw notFound(`backup ${id.data}`);
      const q = await c.query('select * from ops.queue_run($1, $2, $3)', [rows[0].environment_id, 'verify', JSON.stringify({ backup: id.data })]);
      return { status: 201, body: toRun(await getRun(c, q.rows[0].run_id)) };
    });
  }),

  // Imports: the body is the export itself (Odoo zip, pg_dump -Fc, or a bundle with a filestore tarball).
  {
    method: 'POST', pattern: new RegExp(`^/api/projects/${P}/environments/${E}/imports$`), raw: true,
    handler: async ({ pool, claims, params, request, backupStores, importLimits }) => {
      const limits = importLimits ?? DEFAULT_IMPORT_LIMITS;
      // Who may, and whether it can fit, before a byte of the body is read.
      const { project, env, knownMajor } = await asUser(pool, claims, async (c) => {
        const found = await findEnvironment(c, params.project!, params.env!);
        if (!(await canOperate(c, found.project.id, found.env.stage))) {
          throw new HttpError(403, 'forbidden', `your role in ${found.project.slug} cannot import into ${found.env.stage} environments`);
        }
        const { rows } = await c.query(`select manifest->'odoo'->>'majorVersion' as v from ops.backups where environment_id = $1 order by created_at desc limit 1`, [found.env.id]);
        return { ...found, knownMajor: (rows[0]?.v as string | undefined) ?? null };
      });
      // Uploads wait in the server's own directory: the import run turns them into a backup in the project's store.
      const backupStore = backupStores?.uploads;
      if (!backupStore) throw new HttpError(503, 'no_backup_store', 'this server has no backup store; import through a server that runs workers');
      checkDeclaredSize(request!, limits);
      const got = await receiveImport(request!, backupStore, { projectId: project.id, envId: env.id, userId: claims.sub }, limits);
      if (knownMajor && knownMajor !== got.majorVersion) {
        await backupStore.remove(got.prefix).catch(() => {});
        throw new HttpError(409, 'version_mismatch', `the upload is Odoo ${got.odooVersion} but ${env.name} runs Odoo ${knownMajor} (its latest backup); nothing was stored or changed`,
          'Import a database of the same major version (upgrade it first with Odoo\'s upgrade service), or import into an environment of that version.');
      }
      const runParams: C.ImportParams = { upload: got.upload, sha256: got.sha256 };
      await audit(pool, claims, project.id, 'import.upload', got.upload, {
        environment: env.name, bytes: got.bytes, sha256: got.sha256, format: got.format, odooVersion: got.odooVersion,
      });
      let run: C.Run | null = null;
      if (env.stage !== 'production') {
        run = await asUser(pool, claims, async (c) => {
          const { rows } = await c.query('select * from ops.queue_run($1, $2, $3, null, null, 3)', [env.id, 'import', JSON.stringify(runParams)]);
          return toRun(await getRun(c, rows[0].run_id));
        });
      }
      const body: C.ImportUpload = {
        upload: got.upload, sha256: got.sha256, bytes: got.bytes, format: got.format, odooVersion: got.odooVersion, majorVersion: got.majorVersion,
        sourceDatabase: got.sourceDatabase, modules: Object.keys(got.modules).length, filestoreFiles: got.filestoreFiles, params: runParams,
        run, approvalNeeded: env.stage === 'production',
      };
      return { status: 201, body };
    },
  },

  // Dev containers pull the newest masked clone of an environment (what `odooops dev pull` reads).
  // Only clones the server made with the clone rules (kind clone, masked) are ever served this way.
  route('GET', `/api/projects/${P}/environments/${E}/masked-clone`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const { project, env } = await findEnvironment(c, params.project!, params.env!);
      if (!(await canOperate(c, project.id, 'development'))) {
        throw new HttpError(403, 'forbidden', `your role in ${project.slug} cannot pull copies of its data; a developer, tester or admin can`);
      }
      const { rows } = await c.query(
        `select b.*, e.name as environment_name from ops.backups b join ops.environments e on e.id = b.environment_id
         where b.project_id = $1 and b.kind = 'clone' and b.manifest->'clone'->>'source' = $2 and (b.manifest->'clone'->>'masked')::boolean
         order by b.created_at desc limit 1`,
        [project.id, env.name],
      );
      if (!rows[0]) {
        throw new HttpError(404, 'no_clone', `${project.slug} has no masked clone of ${env.name} yet`,
          `queue one: odooops run queue ${project.slug} <staging environment> clone --param from=${env.name} --follow (or odooops dev pull --queue-clone)`);
      }
      const manifest = C.BackupManifest.parse(rows[0].manifest);
      const body: C.MaskedClone = {
        backup: toBackup(rows[0]),
        manifest,
        parts: {
          dump: `/api/backups/${rows[0].id}/parts/dump`, filestore: manifest.filestore ? `/api/backups/${rows[0].id}/parts/filestore` : null,
          index: isObjects(manifest.filestore) ? `/api/backups/${rows[0].id}/parts/index` : null,
        },
      };
      return { body };
    })),
  route('GET', '/api/backups/(?<id>[^/]+)/parts/(?<part>dump|filestore|index)', async ({ pool, claims, params, backupStores }) => {
    const id = C.Uuid.safeParse(params.id);
    if (!id.success) throw notFound(`backup ${params.id}`);
    const backup = await asUser(pool, claims, async (c) => {
      const { rows } = await c.query(
        `select b.*, p.slug as project_slug, e.name as environment_name, ops.can_operate(b.project_id, 'development') as allowed
         from ops.backups b join ops.projects p on p.id = b.project_id join ops.environments e on e.id = b.environment_id where b.id = $1`, [id.data]);
      if (!rows[0]) throw notFound(`backup ${id.data}`);
      if (rows[0].kind !== 'clone' || rows[0].manifest?.clone?.masked !== true) {
        throw new HttpError(403, 'not_masked', `backup ${id.data} is not a masked clone: only masked clones are served as parts; download other backups as an Odoo zip`);
      }
      if (!rows[0].allowed) throw new HttpError(403, 'forbidden', 'your role cannot pull copies of this project\'s data');
      return rows[0];
    });
    const manifest = C.BackupManifest.parse(backup.manifest);
    const part = params.part === 'dump' ? manifest.dump : manifest.filestore;
    if (!part) throw notFound(`the filestore of backup ${id.data} (it has none)`);
    if (params.part === 'index' && !isObjects(part)) throw notFound(`the filestore index of backup ${id.data} (its filestore is one tarball)`);
    // Both parts, not only this one: a pull that gets the dump and then finds no filestore is wasted.
    const { store: backupStore, missing, unreachable } = await firstComplete(backupStoresOf(backupStores, backup), manifest, backup.project_id);
    if (!backupStore && !missing.length) throw new HttpError(503, 'backup_store_unavailable', `backup ${id.data}: ${unreachable.join('; ')}`, 'Try again later; the operator can check the store with odooops infra check.');
    if (!backupStore) {
      throw backupFilesMissing(`masked clone ${id.data} cannot be pulled`, missing,
        `Make a new clone (odooops run queue ${backup.project_slug} ${backup.environment_name} clone --param from=${manifest.clone!.source} --follow), then pull again.`);
    }
    if (params.part !== 'index') await audit(pool, claims, backup.project_id, 'backup.pull', String(id.data), { part: params.part });
    if (isObjects(part)) {
      // The index as stored (its SHA-256 is the manifest's); the filestore rebuilt from the objects, each
      // checked as it streams (a damaged one cuts the tar short), and checked again by the client
      // against the index.
      if (params.part === 'index') {
        const headers: Record<string, string> = { 'content-type': 'application/gzip', 'content-length': String(part.index.bytes), 'x-odooops-sha256': part.index.sha256 };
        return { stream: { readable: await backupStore.get(part.index.key), headers } };
      }
      const headers: Record<string, string> = { 'content-type': 'application/x-tar', 'x-odooops-files': String(part.files) };
      const readable = await filestoreTar(backupStore, backup.project_id, part, undefined, { mtime: new Date(manifest.createdAt) }).catch((err) => {
        if (!(err instanceof FilestoreObjectDamaged)) throw err;
        throw new HttpError(500, 'backup_damaged', `masked clone ${id.data} cannot be pulled: ${err.message}`,
          `Make a new clone (odooops run queue ${backup.project_slug} ${backup.environment_name} clone --param from=${manifest.clone!.source} --follow), then pull again.`);
      });
      return { stream: { readable, headers } };
    }
    return {
      stream: {
        readable: await backupStore.get(part.key),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(part.bytes), 'x-odooops-sha256': part.sha256 },
      },
    };
  }),

  // Alerts: members read their project's (RLS); admins choose channels the registry binds to it -------
  route('GET', `/api/projects/${P}/alerts`, async ({ pool, claims, params, query }) => {
    const limit = z.coerce.number().int().min(1).max(500).default(50).parse(query.limit);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      const { rows } = await c.query(
        `select a.*, $2::text as project_slug, e.name as environment_name from ops.alerts a left join ops.environments e on e.id = a.environment_id
         where a.project_id = $1 order by a.created_at desc, a.id desc limit $3`, [project.id, project.slug, limit]);
      return { body: rows.map(toAlert) };
    });
  }),
  route('GET', `/api/projects/${P}/alert-settings`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'see where its alerts go (its recipients\' addresses)');
      return { body: await alertSettings(c, project) };
    })),
  route('PUT', `/api/projects/${P}/alert-settings`, async ({ pool, claims, params, body }) => {
    const input = C.UpdateAlertSettings.parse(body);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'choose where its alerts go');
      const kinds = new Map<string, unknown>();
      for (const name of input.channels) kinds.set(name, (await bound(c, project, 'alert_channel', name)).details.kind);
      const smtp = [...kinds.values()].includes('smtp');
      if (smtp && input.emails.length === 0) {
        throw new HttpError(400, 'invalid_request', 'an SMTP channel needs the addresses to mail', `Add them: odooops project alerts ${project.slug} --channel NAME --email ADDRESS (at most 20).`);
      }
      if (!smtp && input.emails.length) {
        throw new HttpError(400, 'invalid_request', 'email addresses are for SMTP channels, and none is chosen', `Choose one too: odooops project alerts ${project.slug} --channel NAME --email ADDRESS (odooops infra list ${project.slug} shows the channels).`);
      }
      await c.query(
        `insert into ops.alert_settings (project_id, channels, emails) values ($1, $2, $3)
         on conflict (project_id) do update set channels = excluded.channels, emails = excluded.emails`,
        [project.id, input.channels, input.emails]);
      return { body: await alertSettings(c, project) };
    });
  }),

  // Approvals --------------------------------------------------------------------------------------
  route('GET', `/api/projects/${P}/approvals`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      const { rows } = await c.query(
        `select a.*, e.name as environment_name from ops.approvals a join ops.environments e on e.id = a.environment_id
         where a.project_id = $1 order by a.requested_at desc limit 200`,
        [project.id],
      );
      return { body: rows.map(toApproval) };
    }),
  ),
  route('POST', `/api/projects/${P}/environments/${E}/approvals`, async ({ pool, claims, params, body }) => {
    const input = C.RequestApproval.parse(body);
    return asUser(pool, claims, async (c) => {
      const { env, project } = await findEnvironment(c, params.project!, params.env!);
      // An approved request becomes a run with these params: refused now rather than after a second admin said yes.
      await checkRunParams(c, { project, env: env as { id: string; name: string; stage: string } }, input.kind, input.params);
      if (input.kind === 'clone') await checkCloneProfile(c, project, input.params.profile);
      const { rows } = await c.query('select ops.request_approval($1, $2, $3, $4) as id', [
        env.id, input.kind, JSON.stringify(input.params), input.reason ?? null,
      ]);
      return { status: 201, body: await getApproval(c, rows[0].id) };
    });
  }),
  route('POST', '/api/approvals/(?<id>[^/]+)/(?<decision>approve|reject)', async ({ pool, claims, params }) => {
    const id = C.Uuid.parse(params.id);
    return asUser(pool, claims, async (c) => {
      await c.query('select ops.decide_approval($1, $2)', [id, params.decision === 'approve']);
      return { body: await getApproval(c, id) };
    });
  }),

  // Audit ------------------------------------------------------------------------------------------
  route('GET', `/api/projects/${P}/audit`, async ({ pool, claims, params, query }) => {
    const limit = z.coerce.number().int().min(1).max(1000).default(100).parse(query.limit);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'read the audit log');
      const { rows } = await c.query('select * from ops.audit_log where project_id = $1 order by id desc limit $2', [project.id, limit]);
      return { body: rows.map(toAudit) };
    });
  }),

  // The running Odoo's log (issue 17) ----------------------------------------------------------------
  route('POST', `/api/projects/${P}/environments/${E}/odoo-log/follow`, async ({ pool, claims, params }) =>
    asUser(pool, claims, async (c) => {
      const { project, env } = await findOdooLogEnvironment(c, params.project!, params.env!);
      const lease = (await c.query('select ops.follow_odoo_log($1) as l', [env.id])).rows[0].l as { lease_seconds: number; last_seq: number };
      // What the server can tell already (the registry as published): a log nobody can read.
      const runtime = env.runtime ? (await c.query(`select details from ops.infrastructure where kind = 'runtime' and name = $1`, [env.runtime])).rows[0]?.details : null;
      const problem = !env.runtime
        ? `${env.name} has no runtime, so no Odoo of OdooOps runs for it; an admin sets one: odooops env deploy-target ${project.slug} ${env.name} --runtime NAME`
        : runtime?.kind === 'ssh' && !runtime.followsLog
          ? `the runtime ${env.runtime} of ${env.name} declares no logPath, so its Odoo log cannot be read; the operator adds Odoo's log file to it in the registry`
          : null;
      const body: C.OdooLogFollow = {
        environmentId: env.id, leaseSeconds: lease.lease_seconds, renewSeconds: Math.max(5, Math.floor(lease.lease_seconds / 3)), lastSeq: Number(lease.last_seq), problem,
      };
      return { body };
    })),
  route('GET', `/api/projects/${P}/environments/${E}/odoo-log`, async ({ pool, claims, params, query }) => {
    const q = C.OdooLogQuery.parse(query);
    return asUser(pool, claims, async (c) => {
      const { env } = await findOdooLogEnvironment(c, params.project!, params.env!);
      const levels = q.level ? C.ODOO_LOG_LEVELS.slice(C.ODOO_LOG_LEVELS.indexOf(q.level)) : C.ODOO_LOG_LEVELS;
      const { rows: bounds } = await c.query('select min(seq) as first, max(seq) as last from ops.odoo_log_lines where environment_id = $1', [env.id]);
      const first = bounds[0].first === null ? null : Number(bounds[0].first);
      const last = bounds[0].last === null ? 0 : Number(bounds[0].last);
      let rows;
      if (q.after === undefined) {
        // The last `tail` lines (of the level and above): where a reader starts; nextAfter is the newest seq, to follow from.
        rows = (await c.query(
          `select * from (select seq, ts, level, line from ops.odoo_log_lines where environment_id = $1 and level = any ($2) order by seq desc limit $3) t order by seq`,
          [env.id, levels, q.tail ?? 100])).rows;
      } else {
        rows = (await c.query(
          'select seq, ts, level, line from ops.odoo_log_lines where environment_id = $1 and seq > $2 and level = any ($3) order by seq limit $4',
          [env.id, q.after, levels, q.limit])).rows;
      }
      const lines: C.OdooLogLine[] = rows.map((r) => ({
        seq: Number(r.seq), ts: r.ts.toISOString(), level: r.level, stream: r.level === 'error' || r.level === 'critical' ? 'stderr' : 'stdout', line: r.line,
      }));
      const nextAfter = q.after === undefined ? last : (rows.length < q.limit ? Math.max(q.after, last) : lines.at(-1)!.seq);
      const body: C.OdooLogPage = { environment: env.name, lines, nextAfter, firstSeq: first };
      return { body };
    });
  }),
  // The mail catcher (issue 17): server/api/mail-routes.ts.
  ...mailRoutes,

  // Shell sessions (server/shell/): the project's admins read them (RLS), production's typed input included.
  route('GET', `/api/projects/${P}/shell-sessions`, async ({ pool, claims, params, query }) => {
    const limit = z.coerce.number().int().min(1).max(1000).default(100).parse(query.limit);
    return asUser(pool, claims, async (c) => {
      const project = await findProject(c, params.project!);
      requireAdmin(project, 'read the shell sessions');
      const { rows } = await c.query('select * from ops.shell_sessions where project_id = $1 order by id desc limit $2', [project.id, limit]);
      return {
        body: rows.map((r): C.ShellSession => ({
          id: Number(r.id), environment: r.environment, stage: r.stage, userId: r.user_id, kind: r.kind, clientAddress: r.client_address,
          confirmed: r.confirmed, openedAt: r.opened_at.toISOString(), closedAt: r.closed_at?.toISOString() ?? null, exitCode: r.exit_code,
          endReason: r.end_reason, input: r.input, inputTruncated: r.input_truncated,
        })),
      };
    });
  }),
];

/** An environment whose Odoo log the caller may read: members who may operate its stage (ops.can_operate). */
async function findOdooLogEnvironment(c: pg.PoolClient, slug: string, name: string) {
  const { project, env } = await findEnvironment(c, slug, name);
  if (!(await canOperate(c, project.id, env.stage))) {
    throw new HttpError(403, 'forbidden', `your role in ${project.slug} (${project.role ?? 'not a member'}) cannot read the Odoo log of ${env.stage} environments; a member who may operate ${env.name} can`);
  }
  return { project, env };
}

/** The project's masking profile (the default one when it has none) and whether it is the default. */
async function storedMaskProfile(c: pg.PoolClient, projectId: string): Promise<{ profile: C.MaskProfile; isDefault: boolean }> {
  const stored = (await c.query('select mask_profile from ops.projects where id = $1', [projectId])).rows[0]?.mask_profile ?? null;
  try {
    return { profile: projectMaskProfile(stored), isDefault: stored === null };
  } catch (err) {
    // Only a write that bypassed the API can store one: say so rather than answer 500.
    throw new HttpError(409, 'invalid_masking_profile', (err as Error).message);
  }
}

/** The project's masking profile as its members see it: the one its clones use, floors included. */
async function projectMasking(c: pg.PoolClient, projectId: string): Promise<C.ProjectMasking> {
  const { profile, isDefault } = await storedMaskProfile(c, projectId);
  return { profile: withFloors(profile), isDefault, floors: floorDescriptions() };
}

/** A clone's own profile may only make the project's stricter: refused before anything is queued. */
async function checkCloneProfile(c: pg.PoolClient, project: { id: string; slug: string }, runProfile: unknown): Promise<void> {
  if (runProfile === undefined) return;
  let proposed;
  try {
    proposed = parseMaskProfile(runProfile);
  } catch (err) {
    throw new HttpError(400, 'invalid_request', `params.profile: ${(err as Error).message}`);
  }
  const { weakened } = tightenProfile((await storedMaskProfile(c, project.id)).profile, proposed);
  if (weakened.length) throw new HttpError(400, 'weakens_masking', weakenedMessage(weakened), weakenedHint(project.slug), { weakened });
}

/** A project's alert settings, and the channels it may choose from. */
async function alertSettings(c: pg.PoolClient, project: { id: string; slug: string }): Promise<C.AlertSettings> {
  const s = (await c.query('select channels, emails from ops.alert_settings where project_id = $1', [project.id])).rows[0];
  const { rows } = await c.query(
    `select name, description, details from ops.infrastructure i where i.kind = 'alert_channel' and ($1 = any (i.projects) or '*' = any (i.projects)) order by name`, [project.slug]);
  return {
    channels: s?.channels ?? [], emails: s?.emails ?? [],
    available: rows.map((r) => ({ name: r.name, kind: r.details.kind, description: r.description })),
  };
}

async function getApproval(c: pg.PoolClient, id: string) {
  const { rows } = await c.query(
    'select a.*, e.name as environment_name from ops.approvals a join ops.environments e on e.id = a.environment_id where a.id = $1',
    [id],
  );
  if (!rows[0]) throw notFound(`approval ${id}`);
  return toApproval(rows[0]);
}
