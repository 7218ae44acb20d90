// The control plane's rows as the worker reads them (snake_case, as stored): shared by the worker's
// executors and the modules below them (odoo/, deploy/, github/), so it lives beneath all of them.

export interface EnvironmentRow {
  id: string;
  project_id: string;
  name: string;
  stage: string;
  branch: string | null;
  url: string | null;
  /** Registry names (server/infra): resolved on the worker, for the environment's project only. */
  db_server: string | null;
  db_name: string;
  filestore_root: string | null;
  runtime: string | null;
  http_port: number | null;
  deployed_revision?: string | null;
}

export interface ProjectRow {
  id: string;
  slug: string;
  repo_url: string | null;
  github_repo: string | null;
  production_branch: string;
  staging_branches: string[];
  staging_mode: 'update' | 'fresh';
  production_needs_approval: boolean;
  /** A push to a staging branch also queues a build (migration 20261205000100). */
  build_staging: boolean;
  dev_url_template: string | null;
  /** A registry secret's name: the password of its clones' users (server/odoo/clone-login.ts). */
  clone_password_secret?: string | null;
  /** Registry names: the store backups are written to, and the one each is copied to in the same run (null: none). */
  backup_store?: string;
  backup_copy?: string | null;
}
