// Upgrading from before the registry: environments used to carry their own hosts, password references,
// filestore paths and deploy targets. The migration that ended that (20261130000100) kept them for the
// operator and named each environment's suggested entries (<project>-<environment>[-files|-odoo]); this
// writes those entries out as a registry file to review and adopt, so the operator decides, once, what the
// API users had decided before.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type pg from 'pg';
import { stringify } from 'yaml';
import type { Infrastructure } from './registry.ts';

interface Saved {
  project_slug: string;
  environment: string;
  db_name: string;
  db_server: string;
  filestore_root: string | null;
  runtime: string | null;
  db_host: string | null;
  db_port: number | null;
  db_user: string | null;
  db_password_ref: string | null;
  filestore_path: string | null;
  deploy_target: Record<string, unknown> | null;
}

/** The suggested registry (YAML) for saved settings the registry does not cover yet; null when none. */
export function suggestedRegistry(rows: Saved[], infra: Infrastructure): string | null {
  const databaseServers: Record<string, unknown> = {};
  const filestoreRoots: Record<string, unknown> = {};
  const runtimes: Record<string, unknown> = {};
  const notes: string[] = [];
  for (const r of rows) {
    const projects = [r.project_slug];
    const where = `${r.project_slug}/${r.environment}`;
    if (!infra.has('database_server', r.db_server)) {
      databaseServers[r.db_server] = {
        ...(r.db_host ? { host: r.db_host } : {}), ...(r.db_port ? { port: r.db_port } : {}), ...(r.db_user ? { user: r.db_user } : {}),
        ...(r.db_password_ref ? { password: r.db_password_ref } : {}), databases: [r.db_name], projects,
        description: `${where}'s database, as it was set before the registry`,
      };
    }
    if (r.filestore_root && r.filestore_path && !infra.has('filestore_root', r.filestore_root)) {
      filestoreRoots[r.filestore_root] = { path: dirname(r.filestore_path), projects, description: `${where}'s filestore root` };
      if (basename(r.filestore_path) !== r.db_name) {
        notes.push(`${where}'s filestore was ${r.filestore_path}: filestores are now <root>/<database>, so rename it to ${dirname(r.filestore_path)}/${r.db_name}`);
      }
    }
    const t = r.deploy_target;
    if (r.runtime && t && !infra.has('runtime', r.runtime)) {
      // A local target had one port: the runtime's range is that port (other environments get their own).
      const { kind, httpPort, odooBin, ...rest } = t as { kind: string; httpPort?: number; odooBin?: string; healthTimeoutSeconds?: number };
      runtimes[r.runtime] = kind === 'local'
        ? { kind, odooBin, httpPorts: [httpPort, httpPort], healthTimeoutSeconds: rest.healthTimeoutSeconds ?? 60, projects }
        : { kind, odooBin, ...rest, projects };
    }
  }
  const file = {
    ...(Object.keys(databaseServers).length ? { databaseServers } : {}),
    ...(Object.keys(filestoreRoots).length ? { filestoreRoots } : {}),
    ...(Object.keys(runtimes).length ? { runtimes } : {}),
  };
  if (!Object.keys(file).length) return null;
  return [
    '# What environments used to say for themselves before the infrastructure registry (see SECURITY.md),',
    '# written by the server for you, its operator, to review: the environments already name these entries.',
    '# Check every host, password reference, path and binary, then move the entries into your registry',
    '# file and reload it (SIGHUP, or restart the server). Until then their runs fail with what is missing.',
    ...notes.map((n) => `# NOTE: ${n}`),
    stringify(file).trimEnd(),
    '',
  ].join('\n');
}

/** Writes the suggestion beside the registry when there is one to make; returns its path. */
export async function writeUpgradeSuggestion(pool: pg.Pool, infra: Infrastructure, path: string, log: (m: string) => void): Promise<string | null> {
  const { rows } = await pool.query<Saved>(
    `select s.*, e.db_server, e.filestore_root, e.runtime from ops.environment_settings_before_registry s
     join ops.environments e on e.id = s.environment_id where e.archived_at is null order by s.project_slug, s.environment`);
  const text = suggestedRegistry(rows, infra);
  if (!text) return null;
  if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writeFileSync(path, text, { mode: 0o600 });
  log(`upgrade: ${rows.length} environment(s) kept their settings from before the infrastructure registry; review ${path} and move its entries into the registry (then SIGHUP)`);
  return path;
}
