// Where OdooOps keeps its files on a machine: the on-disk contract between the server (which writes
// connection.json), the CLI and the extension (which read it, and keep sign-in sessions beside it).
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The user's OdooOps directory: $ODOOOPS_HOME, or ~/.odooops. */
export function odooopsHome(explicit?: string): string {
  return explicit ?? process.env.ODOOOPS_HOME ?? join(homedir(), '.odooops');
}

export const clientFiles = (home: string) => ({
  /** Where a running local server says where it listens and which token to use. */
  connection: join(home, 'connection.json'),
  /** Sign-in sessions of `odooops login`, per server, where the OS has no keychain (mode 0600). */
  credentials: join(home, 'credentials.json'),
});
