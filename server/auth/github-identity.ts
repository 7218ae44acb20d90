// Who a GitHub token belongs to, asked of GitHub itself (GET /user, and /user/emails for the primary
// verified address). The token is the person's proof; nothing they send about themselves is believed.
import { z } from 'zod';
import { GitHubLogin } from '../../contract/index.ts';

export interface GitHubIdentity {
  id: number;
  login: string;
  name: string | null;
  /** The primary email, only when GitHub says it is verified; null when unknown or unverified. */
  verifiedEmail: string | null;
  /** The OAuth app the token was issued to (GitHub's X-OAuth-Client-Id); null for other kinds of token. */
  clientId: string | null;
}

/** VS Code's own GitHub sign-in (its built-in GitHub authentication) issues tokens to this OAuth app. */
export const VSCODE_GITHUB_CLIENT_ID = '01ab8ac9400c4e429b23';

/** GitHub refused the token: the caller's problem (401), not GitHub's. */
export class GitHubTokenRefused extends Error {}
/** GitHub could not be asked, or answered something unexpected (502). */
export class GitHubUnavailable extends Error {}

const User = z.object({ id: z.number().int().positive(), login: GitHubLogin, name: z.string().max(500).nullish() });
const Emails = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));
const TIMEOUT_MS = 10_000;

async function get(apiUrl: string, path: string, token: string): Promise<Response> {
  try {
    return await fetch(`${apiUrl.replace(/\/+$/, '')}${path}`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28', 'user-agent': 'odooops' },
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (err) {
    throw new GitHubUnavailable(`cannot reach GitHub at ${apiUrl}: ${(err as Error).cause ?? (err as Error).message}`);
  }
}

export async function githubIdentity(apiUrl: string, token: string): Promise<GitHubIdentity> {
  const res = await get(apiUrl, '/user', token);
  if (res.status === 401) throw new GitHubTokenRefused('GitHub does not accept this token (expired, revoked or not a GitHub token)');
  if (!res.ok) throw new GitHubUnavailable(`GitHub answered ${res.status} to GET /user`);
  const clientId = res.headers.get('x-oauth-client-id');
  const user = User.safeParse(await res.json().catch(() => null));
  if (!user.success) throw new GitHubUnavailable('GitHub answered GET /user with something that is not a user');
  // A token without the user:email scope gets 403/404 here: the person is then known by login only.
  let verifiedEmail: string | null = null;
  const emails = await get(apiUrl, '/user/emails', token);
  if (emails.ok) {
    const list = Emails.safeParse(await emails.json().catch(() => null));
    const primary = list.success ? list.data.find((e) => e.primary && e.verified) : undefined;
    if (primary && z.email().max(320).safeParse(primary.email).success) verifiedEmail = primary.email;
  } else if (emails.status >= 500) {
    throw new GitHubUnavailable(`GitHub answered ${emails.status} to GET /user/emails`);
  } else {
    await emails.body?.cancel();
  }
  return { id: user.data.id, login: user.data.login, name: user.data.name?.trim().slice(0, 200) || null, verifiedEmail, clientId };
}
