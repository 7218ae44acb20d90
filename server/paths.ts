import { homedir } from 'node:os';
import { join } from 'node:path';

/** The user's OdooOps directory: $ODOOOPS_HOME, or ~/.odooops. */
export function odooopsHome(explicit?: string): string {
  return explicit ?? process.env.ODOOOPS_HOME ?? join(homedir(), '.odooops');
}

export const homeFiles = (home: string) => ({
  /** Where a running local server says where it listens and which token to use. */
  connection: join(home, 'connection.json'),
  /** The HS256 secret that signs local tokens (embedded mode). */
  jwtSecret: join(home, 'jwt-secret'),
  /** The local user's id, stable across restarts. */
  localUser: join(home, 'local-user.json'),
  /** The default directory for file: password references of environments. */
  secrets: join(home, 'secrets'),
  /** The demo's Odoo filestores. */
  filestore: join(home, 'filestore'),
  /** The default backup store (a local directory). */
  backups: join(home, 'backups'),
  /** Password of the embedded cluster's superuser. */
  pgPassword: join(home, 'postgres-password'),
});
