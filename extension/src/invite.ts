// "Invite member…": what a person types (a GitHub login, "@login", or an email address) turned into the
// API's invitation, with a message saying what to type instead when it is neither.
// No vscode import: unit-tested alone.
import type { z } from 'zod';
import * as C from '../../contract/index.ts';

export type Invitee = { githubLogin: string } | { email: string };

/** A GitHub login or an email address; a string explains what is wrong with the text. */
export function parseInvitee(text: string): Invitee | string {
  const t = text.trim();
  if (!t) return 'a GitHub login (octocat) or an email address (ana@example.com)';
  if (t.includes('@') && !t.startsWith('@')) {
    const email = C.InvitationInput.safeParse({ email: t, role: 'viewer' });
    return email.success ? { email: t } : `${t} is not an email address; type a GitHub login (octocat) or an email address`;
  }
  const login = t.replace(/^@/, '');
  const parsed = C.GitHubLogin.safeParse(login);
  return parsed.success ? { githubLogin: login } : `${login} is not a GitHub login: ${parsed.error.issues[0]!.message}`;
}

/** The request body, checked by the contract's own schema. */
export function invitation(invitee: Invitee, role: C.Role): z.infer<typeof C.InvitationInput> {
  return C.InvitationInput.parse({ ...invitee, role });
}

/** How the invitee is named in messages: "@octocat" or the email address. */
export const inviteeLabel = (i: Invitee): string => ('githubLogin' in i ? `@${i.githubLogin}` : i.email);

/** What each role may do, as the role picker says it (README's table; the control plane enforces it). */
export const ROLE_HELP: Record<C.Role, string> = {
  viewer: 'reads every environment, runs nothing',
  developer: 'runs on development environments; reads staging and production',
  tester: 'runs on development and staging; reads production',
  admin: 'runs everywhere (production restores need a second admin), manages members and invitations',
};
