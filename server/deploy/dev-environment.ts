// Development environments, one per branch (as Odoo.sh makes them): created on a branch's first push
// (the webhook) or from the editor ("Create development environment from branch…"). Each has a database
// of its own on production's server, a filestore in production's root and its own HTTP port.
import type pg from 'pg';
import type { ProjectRow } from '../rows.ts';
import { withSuffix } from '../odoo/switch.ts';

/** A development environment's name for a branch: feature/Login-Fix → dev-feature-login-fix. */
export function devEnvironmentName(branch: string): string {
  const slug = branch.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return `dev-${slug}`.slice(0, 63).replace(/-+$/, '');
}

/** The branch's live development environment, if it has one. */
export async function findDevEnvironment(c: pg.PoolClient, projectId: string, branch: string) {
  return (await c.query(
    `select * from ops.environments where project_id = $1 and stage = 'development' and branch = $2 and archived_at is null`,
    [projectId, branch],
  )).rows[0];
}

/**
 * Creates the branch's development environment with production's database server, filestore root and
 * runtime (the next free port of a local one): a developer gets a database of their own, never a choice
 * of infrastructure. Infrastructure names are a column only admins and the service write, so `c` is a
 * service session; callers check the user's right first.
 */
export async function createDevEnvironment(c: pg.PoolClient, project: ProjectRow, branch: string) {
  const prod = (await c.query(`select * from ops.environments where project_id = $1 and stage = 'production' and archived_at is null order by name limit 1`, [project.id])).rows[0];
  const { name, db } = await freeNames(c, project, prod, devEnvironmentName(branch));
  // A local runtime is shared with a port of its own; an ssh one is production's host: never for a branch.
  const port = prod?.runtime && prod.http_port !== null
    ? (await c.query('select ops.free_http_port($1) as p', [prod.runtime])).rows[0].p as number | null
    : null;
  const { rows } = await c.query(
    `insert into ops.environments (project_id, name, stage, branch, url, db_server, db_name, filestore_root, runtime, http_port)
     values ($1, $2, 'development', $3, $4, $5, $6, $7, $8, $9) returning *`,
    [project.id, name, branch, project.dev_url_template?.replaceAll('{env}', name) ?? null, prod?.db_server ?? null, db,
      prod?.filestore_root ?? null, port === null ? null : prod.runtime, port],
  );
  return rows[0];
}

/**
 * The environment's name and database for a new branch: the branch's own ("dev-feature-x"), or, when
 * another branch has it ("feature/x" and "feature-x" make the same name, and names cut to 63
 * characters can meet), the first of "-2", "-3"... whose name and database are both free: a push
 * never lands in another branch's environment, and is not refused either.
 */
async function freeNames(c: pg.PoolClient, project: ProjectRow, prod: { db_name: string; db_server: string | null } | undefined, base: string) {
  const prefix = (prod?.db_name ?? project.slug.replace(/-/g, '_')).slice(0, 30);
  for (let n = 1; n <= 100; n++) {
    const suffix = n === 1 ? '' : `-${n}`;
    const name = `${base.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
    const dbSuffix = suffix.replace('-', '_');
    // "_odooops_" marks OdooOps's own side databases (no environment's may contain it).
    const slug = `${prefix}_${name.replace(/[^a-z0-9]/g, '_')}`.replace(/_odooops_/g, '_odoo_ops_');
    const db = withSuffix(slug, dbSuffix);
    const { rows } = await c.query(
      `select exists (select 1 from ops.environments where project_id = $1 and name = $2)
           or exists (select 1 from ops.environments where db_name = $3 and archived_at is null and db_server is not distinct from $4) as taken`,
      [project.id, name, db, prod?.db_server ?? null],
    );
    if (!rows[0].taken) return { name, db };
  }
  throw new Error(`no free environment name for ${base} (tried ${base} to ${base}-100); archive some of the project's environments`);
}
