// Development environments, one per branch (as Odoo.sh makes them): created on a branch's first push
// (the webhook) or from the editor ("Create development environment from branch…"). Each has a database
// of its own on production's server, a filestore beside production's and its own HTTP port.
import { dirname, join } from 'node:path';
import type pg from 'pg';
import type { ProjectRow } from '../worker/executor.ts';

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
 * Creates the branch's development environment. It copies production's deploy target (a column only the
 * service writes), so `c` is a service session; callers check the user's right first.
 */
export async function createDevEnvironment(c: pg.PoolClient, project: ProjectRow, branch: string) {
  const prod = (await c.query(`select * from ops.environments where project_id = $1 and stage = 'production' and archived_at is null order by name limit 1`, [project.id])).rows[0];
  const name = devEnvironmentName(branch);
  const db = `${(prod?.db_name ?? project.slug).slice(0, 30)}_${name.replace(/[^a-z0-9]/g, '_')}`.slice(0, 63);
  let target = null;
  if (prod?.deploy_target?.kind === 'local') {
    const used = (await c.query(`select (deploy_target->>'httpPort')::int as p from ops.environments where project_id = $1 and deploy_target is not null`, [project.id])).rows.map((r) => r.p as number);
    target = { ...prod.deploy_target, httpPort: Math.max(prod.deploy_target.httpPort + 100, ...used) + 1 };
  }
  const { rows } = await c.query(
    `insert into ops.environments (project_id, name, stage, branch, url, db_host, db_port, db_name, db_user, db_password_ref, filestore_path, deploy_target)
     values ($1, $2, 'development', $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *`,
    [project.id, name, branch, project.dev_url_template?.replaceAll('{env}', name) ?? null, prod?.db_host ?? null, prod?.db_port ?? null, db,
      prod?.db_user ?? null, prod?.db_password_ref ?? null, prod?.filestore_path ? join(dirname(prod.filestore_path), db) : null, target],
  );
  return rows[0];
}
