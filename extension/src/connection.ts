// The server on this machine: found by itself through ~/.odooops/connection.json (as the CLI does), with
// the operator's token the server wrote there; it needs no sign-in. Another server's URL comes from the
// setting odooops.serverUrl, and its sign-in from signIn.ts (or, for a server that offers none, a token
// kept in SecretStorage under TOKEN_KEY, never in settings).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LocalConnection } from '../../contract/index.ts';

/** Where SecretStorage keeps the token of a configured server that offers no sign-in. */
export const TOKEN_KEY = 'odooops.token';

export interface Connection {
  url: string;
  token: string;
}

export function localConnection(home = process.env.ODOOOPS_HOME ?? join(homedir(), '.odooops')): Connection | null {
  const file = join(home, 'connection.json');
  if (!existsSync(file)) return null;
  const parsed = LocalConnection.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? { url: parsed.data.url, token: parsed.data.token } : null;
}
