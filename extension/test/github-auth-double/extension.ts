// Test only: an authentication provider with VS Code's GitHub id, standing in for VS Code's own GitHub
// account (which signs in at github.com, unreachable here). Its sessions carry the token the GitHub test
// double (test/helpers/github-double.ts) knows for the account the tests chose
// (ODOOOPS_IT_GITHUB_TOKEN / _LOGIN, or the command githubAuthDouble.use). The extension-host tests
// load it as a second extensionDevelopmentPath, with VS Code's built-in GitHub sign-in disabled.
import * as vscode from 'vscode';

interface Account {
  token: string;
  login: string;
}

export function activate(context: vscode.ExtensionContext) {
  let account: Account | undefined = process.env.ODOOOPS_IT_GITHUB_TOKEN
    ? { token: process.env.ODOOOPS_IT_GITHUB_TOKEN, login: process.env.ODOOOPS_IT_GITHUB_LOGIN ?? 'octocat' }
    : undefined;
  let sessions: vscode.AuthenticationSession[] = [];
  /** What the provider was asked, for the tests to check (scopes, how often a session was created). */
  const asked: { created: string[][]; removed: number } = { created: [], removed: 0 };
  const changed = new vscode.EventEmitter<vscode.AuthenticationProviderAuthenticationSessionsChangeEvent>();
  const provider: vscode.AuthenticationProvider = {
    onDidChangeSessions: changed.event,
    async getSessions(scopes) {
      return sessions.filter((s) => !scopes?.length || scopes.every((x) => s.scopes.includes(x)));
    },
    async createSession(scopes) {
      if (!account) throw new Error('the GitHub test double has no account to sign in with');
      asked.created.push([...scopes]);
      const session: vscode.AuthenticationSession = {
        id: `${account.login}-${asked.created.length}`, accessToken: account.token, scopes: [...scopes],
        account: { id: account.login, label: account.login },
      };
      sessions = [session];
      changed.fire({ added: [session], removed: [], changed: [] });
      return session;
    },
    async removeSession(id) {
      const gone = sessions.filter((s) => s.id === id);
      sessions = sessions.filter((s) => s.id !== id);
      asked.removed++;
      changed.fire({ added: [], removed: gone, changed: [] });
    },
  };
  context.subscriptions.push(
    vscode.authentication.registerAuthenticationProvider('github', 'GitHub (test double)', provider, { supportsMultipleAccounts: false }),
    // Another person at the keyboard: later sign-ins get this account (the current session is dropped).
    vscode.commands.registerCommand('githubAuthDouble.use', async (next: Account) => {
      account = next;
      const gone = sessions;
      sessions = [];
      if (gone.length) changed.fire({ added: [], removed: gone, changed: [] });
    }),
    vscode.commands.registerCommand('githubAuthDouble.asked', () => asked),
  );
}
