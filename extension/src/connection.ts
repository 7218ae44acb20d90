// Where the OdooOps server is and the token to use: a server on this machine is found by itself through
// ~/.odooops/connection.json (as the CLI does); another server's URL comes from the setting
// odooops.serverUrl and its token from SecretStorage, never from settings.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../contract/index.ts';

/** Where SecretStorage keeps the token of a configured server. */
export const TOKEN_KEY = 'odooops.token';

export interface Connection {
  url: string;
  token: string;
  source: 'local' | 'configured';
}

export function localConnection(home = process.env.ODOOOPS_HOME ?? join(homedir(), '.odooops')): Connection | null {
  const file = join(home, 'connection.json');
  if (!existsSync(file)) return null;
  const parsed = LocalConnection.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? { url: parsed.data.url, token: parsed.data.token, source: 'local' } : null;
}

export function resolveConnection(configuredUrl: string | undefined, storedToken: string | undefined, home?: string): Connection | null {
  if (configuredUrl && storedToken) return { url: configuredUrl, token: storedToken, source: 'configured' };
  return localConnection(home);
}
