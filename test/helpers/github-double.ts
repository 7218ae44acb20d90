// A stand-in for GitHub (a named test double: GitHub cannot be reached from here). It answers the calls
// OdooOps makes, as GitHub documents them: the API's GET /user and GET /user/emails for a bearer token,
// and the OAuth device flow on the web side (POST /login/device/code, POST /login/oauth/access_token).
// One HTTP server plays both api.github.com and github.com; every call is recorded.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubAccount {
  id: number;
  login: string;
  name?: string | null;
  emails?: { email: string; primary: boolean; verified: boolean }[];
  /** The token lacks the user:email scope: /user/emails answers 404, as GitHub does. */
  noEmailScope?: boolean;
}

/** What the token endpoint answers for a device code, in turn; the last answer repeats. */
export type DeviceStep = 'authorization_pending' | 'slow_down' | 'expired_token' | 'access_denied' | { token: string };

export interface GitHubDouble {
  url: string;
  calls: { method: string; path: string; auth: string; body: Record<string, unknown> | null; at: number }[];
  /**
   * A GitHub token that belongs to the account, issued to the OAuth app clientId (default VS Code's, as
   * the extension's tokens are; null: a personal access token, which GitHub sends no X-OAuth-Client-Id for).
   */
  addToken(token: string, account: GitHubAccount, clientId?: string | null): void;
  /** The next device flow (POST /login/device/code) gets these answers. */
  nextDeviceFlow(steps: DeviceStep[], opts?: { interval?: number; clientId?: string }): void;
  /** GET /user answers this status until set back to undefined (GitHub down). */
  failUser: number | undefined;
  /** Pull requests per "owner/name", for GET /repos/:owner/:name/commits/:sha/pulls (commit statuses and comments are recorded in calls). */
  pullRequests: Record<string, { number: number; state: 'open' | 'closed'; head: string }[]>;
  close(): Promise<void>;
}

/** VS Code's GitHub sign-in's OAuth app (as GitHub reports it in X-OAuth-Client-Id). */
const VSCODE_CLIENT_ID = '01ab8ac9400c4e429b23';

export async function startGitHubDouble(): Promise<GitHubDouble> {
  const tokens = new Map<string, GitHubAccount>();
  const tokenApps = new Map<string, string | null>();
  const flows = new Map<string, { steps: DeviceStep[]; clientId: string }>();
  let pending: { steps: DeviceStep[]; interval: number; clientId: string } = { steps: [], interval: 0, clientId: 'Iv1.test-client' };
  let n = 0;
  const calls: GitHubDouble['calls'] = [];
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));

  const double: GitHubDouble = {
    url: '',
    calls,
    addToken: (token, account, clientId = VSCODE_CLIENT_ID) => {
      tokens.set(token, account);
      if (!tokenApps.has(token) || clientId !== VSCODE_CLIENT_ID) tokenApps.set(token, clientId);
    },
    nextDeviceFlow: (steps, o = {}) => {
      pending = { steps, interval: o.interval ?? 0, clientId: o.clientId ?? 'Iv1.test-client' };
    },
    failUser: undefined,
    pullRequests: {},
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };

  const server: Server = createServer(async (req, res) => {
    let text = '';
    for await (const c of req) text += c;
    const url = new URL(req.url ?? '/', 'http://x');
    let body: Record<string, unknown> | null = null;
    if (text) {
      body = (req.headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : Object.fromEntries(new URLSearchParams(text));
    }
    calls.push({ method: req.method!, path: url.pathname, auth: String(req.headers.authorization ?? ''), body, at: Date.now() });
    const bearer = /^Bearer (.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
    const account = tokens.get(bearer);

    if (req.method === 'GET' && url.pathname === '/user') {
      if (double.failUser) return json(res, double.failUser, { message: 'Service unavailable' });
      if (!account) return json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      const app = tokenApps.get(bearer);
      if (app) res.setHeader('x-oauth-client-id', app);
      return json(res, 200, { id: account.id, login: account.login, name: account.name ?? null, type: 'User' });
    }
    if (req.method === 'GET' && url.pathname === '/user/emails') {
      if (!account) return json(res, 401, { message: 'Bad credentials' });
      if (account.noEmailScope) return json(res, 404, { message: 'Not Found' });
      return json(res, 200, (account.emails ?? []).map((e) => ({ ...e, visibility: e.primary ? 'private' : null })));
    }
    if (req.method === 'POST' && url.pathname === '/login/device/code') {
      if (body?.client_id !== pending.clientId) return json(res, 200, { error: 'unauthorized_client', error_description: 'unknown client id' });
      const code = `device-${++n}`;
      flows.set(code, { steps: [...pending.steps], clientId: pending.clientId });
      return json(res, 200, {
        device_code: code, user_code: `WDJB-MJH${n}`, verification_uri: `${double.url}/login/device`, expires_in: 900, interval: pending.interval,
      });
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const flow = flows.get(String(body?.device_code ?? ''));
      if (!flow || body?.client_id !== flow.clientId || body?.grant_type !== 'urn:ietf:params:oauth:grant-type:device_code') {
        return json(res, 200, { error: 'incorrect_device_code' });
      }
      const step = flow.steps.length > 1 ? flow.steps.shift()! : flow.steps[0]!;
      if (typeof step === 'object') tokenApps.set(step.token, flow.clientId);
      if (typeof step === 'object') return json(res, 200, { access_token: step.token, token_type: 'bearer', scope: 'read:user,user:email' });
      // slow_down carries the new interval (GitHub adds 5 s; the double adds 1 to keep tests quick).
      return json(res, 200, { error: step, ...(step === 'slow_down' ? { interval: 1 } : {}) });
    }
    // The repository API OdooOps writes to (commit statuses, comments) and reads (a commit's pull requests).
    const repo = /^\/repos\/([^/]+)\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (repo) {
      if (!/^(token|Bearer) \S+$/i.test(String(req.headers.authorization ?? ''))) return json(res, 401, { message: 'Requires authentication' });
      const [, owner, name, rest] = repo as unknown as [string, string, string, string];
      if (req.method === 'POST' && /^statuses\/[0-9a-f]{40}$/.test(rest)) {
        if (!['pending', 'success', 'failure', 'error'].includes(String(body?.state))) return json(res, 422, { message: 'Validation Failed' });
        return json(res, 201, { id: ++n, state: body?.state, context: body?.context ?? 'default', description: body?.description ?? null });
      }
      if (req.method === 'POST' && /^issues\/\d+\/comments$/.test(rest)) return json(res, 201, { id: ++n, body: body?.body });
      const pulls = /^commits\/([0-9a-f]{40})\/pulls$/.exec(rest);
      if (req.method === 'GET' && pulls) {
        return json(res, 200, (double.pullRequests[`${owner}/${name}`] ?? []).filter((p) => p.head === pulls[1]).map((p) => ({ number: p.number, state: p.state, head: { sha: p.head } })));
      }
      if (req.method === 'POST' && rest === 'deployments') return json(res, 201, { id: ++n });
      if (req.method === 'POST' && /^deployments\/\d+\/statuses$/.test(rest)) return json(res, 201, { id: ++n });
    }
    json(res, 404, { message: 'Not Found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  double.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return double;
}
