import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { clientFiles, odooopsHome } from '../contract/home.ts';

export { odooopsHome };

export const homeFiles = (home: string) => ({
  ...clientFiles(home),
  /** The HS256 secret that signs local tokens (embedded mode). */
  jwtSecret: join(home, 'jwt-secret'),
  /** The local user's id, stable across restarts. */
  localUser: join(home, 'local-user.json'),
  /** The operator's infrastructure registry (server/infra/registry.ts), unless --infra names another. */
  infrastructure: join(home, 'infrastructure.yaml'),
  /** What environments set for themselves before the registry, as registry entries to review (server/infra/upgrade.ts). */
  infrastructureFromUpgrade: join(home, 'infrastructure.from-upgrade.yaml'),
  /** The default backup store (a local directory). */
  backups: join(home, 'backups'),
  /** Password of the embedded cluster's superuser. */
  pgPassword: join(home, 'postgres-password'),
  /** Password of the demo's own (unprivileged) database role in the embedded cluster. */
  demoPgPassword: join(home, 'demo-postgres-password'),
  /**
   * The port the mail catcher listened on last, when the registry names none: neutralized environments
   * keep it in their outgoing server, so a restart listens there again.
   */
  mailCatcherPort: join(home, 'mail-catcher-port'),
});

/** Every ancestor must be searchable by others, or another OS user (postgres, the run user) cannot reach the directory. */
export function reachableByOthers(dir: string): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/**
 * Where files other OS users work in live (the embedded cluster, run by postgres; checkouts and the
 * demo's filestores, written by the run user): the OdooOps directory itself, unless root runs from a
 * home those users cannot enter (root's own ~/.odooops), then /var/lib/odooops/<hash of the home>.
 */
export function sharedDir(home: string): string {
  if (process.getuid?.() !== 0 || reachableByOthers(home)) return home;
  const tag = createHash('sha256').update(resolve(home)).digest('hex').slice(0, 12);
  return join('/var/lib/odooops', tag);
}
