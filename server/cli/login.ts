// `odooops login` and `odooops logout`. Login gets a GitHub token, by GitHub's device flow (the
// person enters a short code at GitHub in any browser, so it works over ssh and in a Codespace) or
// from stdin (CI), exchanges it at the server for an OdooOps session, and keeps the session.
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import * as C from '../../contract/index.ts';
import { clientFiles, odooopsHome } from '../../contract/home.ts';
import { CliError, EXIT } from '../../client/api-client.ts';
import { SessionManager, signInWithGitHub, type StoredSession } from '../../client/session.ts';
import { CredentialStore, serverKey } from './credentials.ts';

/** What the device flow asks GitHub for: who the person is, and their verified email. */
const SCOPE = 'read:user user:email';

const DeviceCode = z.object({
  device_code: z.string().min(1),
  user_code: z.string().min(1),
  verification_uri: z.string().url(),
  expires_in: z.number().positive(),
  interval: z.number().min(0).default(5),
});
const TokenAnswer = z.union([
  z.object({ access_token: z.string().min(1) }),
  z.object({ error: z.string(), error_description: z.string().optional(), interval: z.number().optional() }),
]);

export interface DeviceFlowIo {
  /** Lines for the person (stderr). */
  say(line: string): void;
  /** The progress line, rewritten in place on a terminal. */
  progress(line: string): void;
  sleep?(ms: number): Promise<void>;
}

async function postForm(url: string, form: Record<string, string>): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'odooops' },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CliError(`cannot reach GitHub at ${url}: ${(err as Error).cause ?? (err as Error).message}`, EXIT.unreachable, 'Check this machine\'s connection to GitHub, or pipe a token: gh auth token | odooops login --with-token');
  }
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`GitHub answered ${res.status} at ${url}, not with JSON`, EXIT.server, 'Try again later.');
  }
}

/** GitHub's OAuth device flow (RFC 8628 as GitHub runs it); the GitHub token it ends with. */
export async function githubDeviceFlow(github: { webUrl: string; clientId: string }, io: DeviceFlowIo): Promise<string> {
  const web = github.webUrl.replace(/\/+$/, '');
  const started = await postForm(`${web}/login/device/code`, { client_id: github.clientId, scope: SCOPE });
  const code = DeviceCode.safeParse(started);
  if (!code.success) {
    const e = z.object({ error: z.string(), error_description: z.string().optional() }).safeParse(started);
    throw new CliError(`GitHub refused to start signing in: ${e.success ? e.data.error_description ?? e.data.error : 'an unexpected answer'}`, EXIT.rejected,
      'The server\'s GitHub OAuth app (--github-client-id) must have the device flow enabled in its settings on GitHub.');
  }
  const { device_code, user_code, verification_uri, expires_in } = code.data;
  let interval = code.data.interval;
  io.say(`Open ${verification_uri} in a browser and enter the code ${user_code}`);
  const sleep = io.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const deadline = Date.now() + expires_in * 1000;
  for (;;) {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    io.progress(`Waiting for you to authorize OdooOps on GitHub… (the code expires in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')})`);
    await sleep(Math.max(250, interval * 1000));
    if (Date.now() > deadline) throw expired();
    const answer = TokenAnswer.safeParse(await postForm(`${web}/login/oauth/access_token`, {
      client_id: github.clientId, device_code, grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
    }));
    if (!answer.success) throw new CliError('GitHub answered the sign-in with something unexpected', EXIT.server, 'Run odooops login again.');
    if ('access_token' in answer.data) return answer.data.access_token;
    switch (answer.data.error) {
      case 'authorization_pending':
        continue;
      case 'slow_down':
        // GitHub says how long to wait now (5 s more each time).
        interval = answer.data.interval ?? interval + 5;
        continue;
      case 'expired_token':
        throw expired();
      case 'access_denied':
        throw new CliError('you declined to authorize OdooOps on GitHub: not signed in', EXIT.rejected, 'Run odooops login again to retry.');
      default:
        throw new CliError(`GitHub refused the sign-in: ${answer.data.error_description ?? answer.data.error}`, EXIT.rejected, 'Run odooops login again.');
    }
  }
}

const expired = () => new CliError('the code expired before it was entered at GitHub: not signed in', EXIT.rejected, 'Run odooops login again for a new code.');

/** Which server login/logout mean: --url, ODOOOPS_URL, the default (last login), the local server. */
export function loginServer(opts: { url?: string; home?: string; store?: CredentialStore }): string {
  const url = opts.url ?? process.env.ODOOOPS_URL ?? opts.store?.defaultServer();
  if (url) return serverKey(url);
  const file = clientFiles(odooopsHome(opts.home)).connection;
  if (existsSync(file)) return serverKey(C.LocalConnection.parse(JSON.parse(readFileSync(file, 'utf8'))).url);
  throw new CliError('which server? No --url given and no server found on this machine', EXIT.usage, 'Pass --url https://your-odooops-server (or set ODOOOPS_URL).');
}

async function health(url: string): Promise<C.Health> {
  let res: Response;
  try {
    res = await fetch(new URL('/api/health', url), { signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new CliError(`cannot reach the OdooOps server at ${url}: ${(err as Error).cause ?? (err as Error).message}`, EXIT.unreachable, 'Check --url (or ODOOOPS_URL).');
  }
  const parsed = C.Health.safeParse(await res.json().catch(() => null));
  if (!parsed.success) throw new CliError(`${url} is not an OdooOps server that offers sign-in (GET /api/health)`, EXIT.unreachable, 'Check --url, or update the server.');
  return parsed.data;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

export interface LoginResult {
  server: string;
  user: C.UserProfile;
  joined: C.AuthSession['joined'];
  storedIn: string;
}

export async function login(opts: { url?: string; home?: string; withToken?: boolean; io: DeviceFlowIo }): Promise<LoginResult> {
  const store = new CredentialStore(odooopsHome(opts.home));
  const server = loginServer({ url: opts.url, home: opts.home, store });
  const h = await health(server);
  let githubToken: string;
  if (opts.withToken) {
    githubToken = await readStdin();
    if (!githubToken) throw new CliError('--with-token reads a GitHub token from stdin, and there was none', EXIT.usage, 'e.g. gh auth token | odooops login --with-token');
  } else {
    if (!h.auth.github) {
      throw new CliError(`${server} signs people in with Supabase Auth, which the CLI cannot do`, EXIT.rejected,
        'Sign in from VS Code (OdooOps: Sign in), or ask the operator for a token (odooops token) for --token / ODOOOPS_TOKEN.');
    }
    if (!h.auth.github.clientId) {
      throw new CliError(`${server} has no GitHub OAuth app for signing in from a terminal`, EXIT.rejected,
        'Its operator starts it with --github-client-id (or ODOOOPS_GITHUB_CLIENT_ID). Meanwhile pipe a GitHub token: gh auth token | odooops login --with-token');
    }
    githubToken = await githubDeviceFlow({ webUrl: h.auth.github.webUrl, clientId: h.auth.github.clientId }, opts.io);
  }
  const session = await signInWithGitHub(server, githubToken);
  const storage = store.storageFor(server, { makeDefault: true });
  const previous = await storage.load().catch(() => undefined);
  await new SessionManager({ url: server, storage }).signIn(session);
  if (previous) {
    // Signing in again replaces the session kept here: end the old one on the server rather than leave
    // it valid for 30 days with nobody holding it (best effort; it is refreshed first if it has expired).
    let held: StoredSession | undefined = previous;
    const old = new SessionManager({ url: server, storage: { load: async () => held, save: async (s) => void (held = s), clear: async () => void (held = undefined) } });
    await old.load();
    await old.signOut().catch(() => {});
  }
  return { server, user: session.user, joined: session.joined, storedIn: store.where(server) ?? store.file };
}

export async function logout(opts: { url?: string; home?: string }): Promise<{ server: string; signedIn: boolean; revoked: boolean; error?: string }> {
  const store = new CredentialStore(odooopsHome(opts.home));
  const server = loginServer({ url: opts.url, home: opts.home, store });
  if (!store.has(server)) return { server, signedIn: false, revoked: false };
  const sm = new SessionManager({ url: server, storage: store.storageFor(server) });
  return { server, signedIn: true, ...(await sm.signOut()) };
}
