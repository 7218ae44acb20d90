// Signing in to a configured OdooOps server, as the server offers it (Health.auth):
// - github: VS Code's own GitHub account (vscode.authentication), whose token the server exchanges for
//   an OdooOps session (client/session.ts). Nothing is pasted. The refresh token is kept in SecretStorage
//   per server URL, the access token in memory; the session manager refreshes before expiry and hands
//   every new token to the API client, whose listeners (live Realtime channels) pass it on.
// - supabase: Supabase Auth's GitHub provider with PKCE (supabaseSignIn.ts); the browser comes back to
//   this extension's URI handler.
// The GitHub token goes to a server only when the person signs in to it (the command, the welcome
// view's button, or the Accounts menu entry VS Code shows for OdooOps), never on its own; and the
// server URL is a user setting a workspace cannot set (application scope).
import * as vscode from 'vscode';
import * as C from '../../contract/index.ts';
import { ApiClient, CliError, EXIT } from '../../client/api-client.ts';
import { SESSION_ENDED, SessionManager, signInWithGitHub } from '../../client/session.ts';
import { insecureSignIn, refreshTokenStorage, serverKey, supabaseStorage } from './credentials.ts';
import { SupabaseSignIn } from './supabaseSignIn.ts';

/** What the server needs to know of a GitHub account: who it is and its verified email. */
export const GITHUB_SCOPES = ['read:user', 'user:email'];
/** The URI handler's path a Supabase sign-in comes back to. */
export const AUTH_PATH = '/auth';
/** How long a browser sign-in may take before it is given up. */
const BROWSER_TIMEOUT_MS = 5 * 60_000;
/** globalState: the servers (serverKey) signed out of on purpose, offered no sign-in until asked. */
const SIGNED_OUT = 'odooops.signedOut';

export type Method = 'github' | 'supabase';
export const methodOf = (auth: C.Health['auth']): Method | null => (auth.supabase ? 'supabase' : auth.github ? 'github' : null);

export interface SignedIn {
  user: C.UserProfile;
  joined: { project: string; role: C.Role }[];
}

interface Server {
  url: string;
  method: Method;
  github?: SessionManager;
  supabase?: SupabaseSignIn;
  /** Where the Supabase project's Auth is (the browser signs in there). */
  supabaseUrl?: string;
  /** The API client carrying this server's session, once signed in. */
  api?: ApiClient;
  /** Ends what the signed-in session started (attached to the client, refresh timer, listeners). */
  detach: (() => void)[];
  /** Ends what was made for this server (the Supabase client). */
  close: (() => void)[];
}

export class SignIns implements vscode.UriHandler {
  private readonly context: vscode.ExtensionContext;
  /** A session ended by itself (revoked elsewhere, expired): the extension reconnects to show it. */
  private readonly ended: (reason: string) => void;
  /** A sign-in finished outside a command (the Accounts menu). */
  private readonly signedInElsewhere: (s: SignedIn) => void;
  private server: Server | undefined;
  private waiting: { resolve: (uri: vscode.Uri) => void; reject: (err: Error) => void } | undefined;
  /** The server whose sign-in VS Code's Accounts menu offers (a request was made for it). */
  private requested: string | undefined;

  constructor(context: vscode.ExtensionContext, handlers: { ended(reason: string): void; signedIn(s: SignedIn): void }) {
    this.context = context;
    this.ended = handlers.ended;
    this.signedInElsewhere = handlers.signedIn;
    context.subscriptions.push(
      vscode.window.registerUriHandler(this),
      // Picking "Sign in with GitHub to use OdooOps" in the Accounts menu makes a GitHub session.
      vscode.authentication.onDidChangeSessions((e) => {
        if (e.provider.id === 'github') void this.takeRequestedAccount();
      }),
      { dispose: () => this.close() },
    );
  }

  /** The configured server being signed in to, and how. */
  get current(): { url: string; method: Method; signedIn: boolean } | undefined {
    const s = this.server;
    return s && { url: s.url, method: s.method, signedIn: !!(s.github?.session ?? s.supabase?.session) };
  }

  /**
   * Opens a configured server that offers sign-in: an API client carrying the stored session, or
   * undefined when there is none (sign-in is then offered). Opened again while signed in (a refresh),
   * it is the same client, so open log panels keep following with the session's fresh tokens.
   */
  async open(url: string, auth: C.Health['auth']): Promise<ApiClient | undefined> {
    const method = methodOf(auth);
    if (!method) throw new Error(`${url} offers no sign-in`);
    if (this.server?.url !== url || this.server.method !== method) {
      this.close();
      this.server = { url, method, close: [], detach: [] };
      if (method === 'github') this.server.github = new SessionManager({ url, storage: refreshTokenStorage(this.context.secrets, url) });
      else {
        const sb = new SupabaseSignIn(url, auth.supabase!, supabaseStorage(this.context.secrets, url));
        this.server.supabase = sb;
        this.server.supabaseUrl = auth.supabase!.url;
        this.server.close.push(() => sb.dispose());
      }
    }
    const server = this.server;
    if (server.api) return server.api;
    const api = new ApiClient({ url, token: '' });
    // A session that ends by itself (revoked elsewhere, its refresh token replayed) leaves the server.
    const onEnd = (session: unknown) => {
      if (session || this.server !== server) return;
      this.close();
      this.ended(`your session on ${url} ended`);
    };
    try {
      if (server.github) {
        const manager = server.github;
        if (!(await manager.load())) return this.offer(server);
        server.detach.push(manager.attach(api));
        // A session read from storage has no access token: renewed now, so one that ended shows as signed out.
        await manager.token();
        server.detach.push(manager.startAutoRefresh(), manager.onChange(onEnd));
      } else {
        const sb = server.supabase!;
        if (!(await sb.load())) return this.offer(server);
        server.detach.push(sb.attach(api), sb.onChange(onEnd));
      }
    } catch (err) {
      for (const d of server.detach.splice(0)) d();
      server.github?.stopAutoRefresh();
      if ((err as CliError).code !== SESSION_ENDED) throw err;
      void vscode.window.showWarningMessage(`OdooOps: ${(err as Error).message}. Sign in again.`);
      return this.offer(server);
    }
    server.api = api;
    return api;
  }

  /**
   * Not signed in: VS Code's Accounts menu gets "Sign in with GitHub to use OdooOps" (unless this
   * server was signed out of on purpose), besides the welcome view's button.
   */
  private async offer(server: Server): Promise<undefined> {
    if (server.method !== 'github' || this.signedOutOnPurpose(server.url)) return undefined;
    // Neither silent nor createIfNone: without a session OdooOps may use, VS Code adds the request to
    // its Accounts menu; with one, nothing is sent anywhere until the person signs in.
    const existing = await vscode.authentication.getSession('github', GITHUB_SCOPES, {}).then((s) => s, () => undefined);
    if (!existing && this.server === server) this.requested = server.url;
    return undefined;
  }

  private async takeRequestedAccount(): Promise<void> {
    const server = this.server;
    if (!server?.github || server.github.session || this.requested !== server.url || insecureSignIn(server.url)) return;
    const account = await vscode.authentication.getSession('github', GITHUB_SCOPES, { silent: true }).then((s) => s, () => undefined);
    if (!account || this.server !== server || server.github.session) return;
    this.requested = undefined;
    try {
      this.signedInElsewhere(await this.exchange(server, account.accessToken));
    } catch (err) {
      const hint = err instanceof CliError && err.hint ? ` ${err.hint}` : '';
      void vscode.window.showErrorMessage(`OdooOps: sign-in failed: ${(err as Error).message}.${hint}`);
    }
  }

  /** "OdooOps: Sign in": asks VS Code for the GitHub account (its consent dialog), or Supabase Auth in the browser. */
  async signIn(): Promise<SignedIn> {
    const server = this.server;
    if (!server) throw new CliError('this server needs no sign-in', EXIT.usage, 'Connect to your team\'s server first: "OdooOps: Connect…".');
    const insecure = insecureSignIn(server.url) ?? (server.supabase ? insecureSignIn(server.supabaseUrl!) : null);
    if (insecure) throw new CliError(insecure, EXIT.usage);
    if (server.method === 'github') {
      const account = await vscode.authentication.getSession('github', GITHUB_SCOPES, { createIfNone: true });
      return this.exchange(server, account.accessToken);
    }
    return this.signInWithSupabase(server);
  }

  private async exchange(server: Server, githubToken: string): Promise<SignedIn> {
    const session = await signInWithGitHub(server.url, githubToken);
    await server.github!.signIn(session);
    await this.forgetSignOut(server.url);
    return { user: session.user, joined: session.joined };
  }

  private async signInWithSupabase(server: Server): Promise<SignedIn> {
    const sb = server.supabase!;
    // What a browser can open to reach this window's URI handler (vscode://…, or a forwarded URL in
    // Codespaces and code-server); Supabase Auth must list it among its redirect URLs.
    const redirect = await vscode.env.asExternalUri(vscode.Uri.parse(`${vscode.env.uriScheme}://${this.context.extension.id}${AUTH_PATH}`));
    const authorize = await sb.authorizeUrl(redirect.toString(true));
    const back = await vscode.window.withProgress({
      location: vscode.ProgressLocation.Notification, cancellable: true,
      title: 'OdooOps: signing in with GitHub through Supabase; finish in your browser…',
    }, async (_progress, cancel) => {
      const came = this.waitForBrowser(cancel);
      // A string, not a Uri: VS Code would re-encode the query (redirect_to, code_challenge).
      await vscode.env.openExternal(authorize as unknown as vscode.Uri);
      return came;
    });
    const session = await sb.complete(new URL(back.toString(true)));
    const accepted = await sb.accept(session);
    await this.forgetSignOut(server.url);
    return accepted;
  }

  /** The next URI the browser brings back to the handler, for the sign-in this window started. */
  private waitForBrowser(cancel: vscode.CancellationToken): Promise<vscode.Uri> {
    this.waiting?.reject(new CliError('another sign-in was started', EXIT.usage));
    return new Promise<vscode.Uri>((resolve, reject) => {
      const timer = setTimeout(() => done(undefined, new CliError('no answer from the browser within 5 minutes', EXIT.unreachable, 'Run "OdooOps: Sign in" again.')), BROWSER_TIMEOUT_MS);
      const sub = cancel.onCancellationRequested(() => done(undefined, new CliError('sign-in cancelled', EXIT.usage)));
      const done = (uri?: vscode.Uri, err?: Error) => {
        clearTimeout(timer);
        sub.dispose();
        this.waiting = undefined;
        if (uri) resolve(uri);
        else reject(err!);
      };
      this.waiting = { resolve: (uri) => done(uri), reject: (err) => done(undefined, err) };
    });
  }

  /** vscode://odooops.odooops/auth?code=…: only while this window waits for its own sign-in. */
  handleUri(uri: vscode.Uri): void {
    if (uri.path === AUTH_PATH && this.waiting) return this.waiting.resolve(uri);
    // Anyone can make a browser open such a link: one nobody here asked for is dropped, visibly.
    void vscode.window.showWarningMessage(`OdooOps: ignored a link to ${uri.path || '/'}: no sign-in was started in this window.`);
  }

  /** "OdooOps: Sign out": the server (or Supabase) ends the session; it is forgotten here either way. */
  async signOut(): Promise<{ revoked: boolean; error?: string }> {
    const server = this.server;
    if (!server) return { revoked: false, error: 'not signed in' };
    // Its end is asked for here: no "your session ended" notice.
    this.server = undefined;
    this.requested = undefined;
    try {
      return server.github ? await server.github.signOut() : await server.supabase!.signOut();
    } finally {
      for (const c of [...server.detach.splice(0), ...server.close.splice(0)]) c();
      server.github?.stopAutoRefresh();
      const signedOut = new Set(this.context.globalState.get<string[]>(SIGNED_OUT, []));
      signedOut.add(serverKey(server.url));
      await this.context.globalState.update(SIGNED_OUT, [...signedOut]);
    }
  }

  private signedOutOnPurpose(url: string): boolean {
    return this.context.globalState.get<string[]>(SIGNED_OUT, []).includes(serverKey(url));
  }

  private async forgetSignOut(url: string): Promise<void> {
    const key = serverKey(url);
    await this.context.globalState.update(SIGNED_OUT, this.context.globalState.get<string[]>(SIGNED_OUT, []).filter((k) => k !== key));
  }

  /** Leaves the current server (another one is connected, or the extension stops). */
  close(): void {
    const server = this.server;
    this.server = undefined;
    this.requested = undefined;
    for (const c of [...server?.detach.splice(0) ?? [], ...server?.close.splice(0) ?? []]) c();
    server?.github?.stopAutoRefresh();
  }
}
