// The server on this machine: found by itself through <home>/connection.json (as the CLI does), with
// the operator's token the server wrote there; it needs no sign-in. The home is the setting
// odooops.home, else $ODOOOPS_HOME, else ~/.odooops: a server started with another home is found
// without restarting VS Code with the variable. Another server's URL comes from the setting
// odooops.serverUrl, and its sign-in from signIn.ts (or, for a server that offers none, a token kept
// in SecretStorage under TOKEN_KEY, never in settings). No vscode import: unit-tested on its own.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { clientFiles } from '../../contract/home.ts';
import { LocalConnection } from '../../contract/index.ts';

/** Where SecretStorage keeps the token of a configured server that offers no sign-in. */
export const TOKEN_KEY = 'odooops.token';

export interface Connection {
  url: string;
  token: string;
}

/** The OdooOps home to look in: the setting (a leading ~ is the user's home), $ODOOOPS_HOME, ~/.odooops. */
export function odooopsHomeOf(setting: string | undefined, env: NodeJS.ProcessEnv = process.env): { home: string; from: 'setting' | 'ODOOOPS_HOME' | 'default' } {
  const s = setting?.trim();
  if (s) return { home: s === '~' ? homedir() : s.startsWith('~/') ? join(homedir(), s.slice(2)) : s, from: 'setting' };
  if (env.ODOOOPS_HOME) return { home: env.ODOOOPS_HOME, from: 'ODOOOPS_HOME' };
  return { home: join(homedir(), '.odooops'), from: 'default' };
}

/** What looking for the local server found: its connection, or where it looked and why that is no server. */
export type LocalLookup =
  | { found: true; file: string; connection: Connection }
  | { found: false; file: string; why: string };

export function findLocalConnection(home: string): LocalLookup {
  const file = clientFiles(home).connection;
  if (!isAbsolute(home)) return { found: false, file, why: `the OdooOps home "${home}" is not an absolute path` };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { found: false, file, why: code === 'ENOENT' ? 'no such file: no server was started with this home, or it stopped' : `it cannot be read (${code ?? (err as Error).message})` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { found: false, file, why: 'it is not JSON (a server may be writing it: try again)' };
  }
  const parsed = LocalConnection.safeParse(json);
  if (!parsed.success) return { found: false, file, why: 'it is not what an OdooOps server writes' };
  return { found: true, file, connection: { url: parsed.data.url, token: parsed.data.token } };
}

/** What to do when no server on this machine was found there. */
export const START_HINT = 'Start one on this machine with `npm start` in the OdooOps folder (or `odooops server`), and it is picked up by itself; ' +
  'if it runs with another ODOOOPS_HOME, set the setting odooops.home to that folder; for your team\'s server, run "OdooOps: Connect…" with its URL.';

/** The error of "no server on this machine": where it looked and why that is none. */
export function noLocalServer(lookup: Extract<LocalLookup, { found: false }>, from: ReturnType<typeof odooopsHomeOf>['from']): { message: string; hint: string } {
  const whose = from === 'setting' ? ' (the setting odooops.home)' : from === 'ODOOOPS_HOME' ? ' ($ODOOOPS_HOME)' : '';
  return { message: `no OdooOps server found on this machine: looked for ${lookup.file}${whose}, and ${lookup.why}`, hint: START_HINT };
}

/** The error of a connection file whose server does not answer (stopped without removing it, or another machine's). */
export function unreachableLocalServer(file: string, url: string, error: string): { message: string; hint: string } {
  return {
    message: `the server named in ${file} does not answer at ${url} (${error})`,
    hint: 'It may have stopped: start it again with `npm start` (or `odooops server`); it rewrites that file and is picked up by itself.',
  };
}
