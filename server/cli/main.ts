#!/usr/bin/env node
// The odooops command: the server, and a client of its API for people and CI pipelines.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import * as C from '../../contract/index.ts';
import { runParamsProblems } from '../../contract/run-params.ts';
import { ApiClient, CliError, EXIT, resolveTarget } from '../../client/api-client.ts';
import { followLogs, followOdooLog } from '../../client/follow.ts';
import { mib } from '../odoo/inspect.ts';
import { summaryLine } from '../odoo/test-log.ts';
import { parseSize } from './import.ts';

/**
 * Every command, with its usage and what it does: `odooops --help` prints them all, `odooops <command>
 * --help` the matching ones, and error hints may only name commands listed here (a test checks).
 */
const COMMANDS: { section: string; name: string; usage: string; help?: string }[] = [
  {
    section: 'Server', name: 'server',
    usage: `odooops server [--database-url URL] [--port N] [--host H] [--demo] [--executors MODULE]...
               [--jwt-secret S | --jwks-url URL] [--realtime-url URL --realtime-key KEY]
               [--infra FILE] [--run-as USER] [--concurrency N] [--lease SECONDS] [--grace SECONDS]
               [--backup-dir DIR] [--work-dir DIR] [--no-worker] [--max-import-size SIZE]
               [--github-webhook-secret S] [--github-api-url URL]
               [--github-client-id ID] [--github-allowed-client-id ID]... [--github-web-url URL] [--session-ttl SECONDS]`,
    help: `Starts the control plane: the embedded PostgreSQL under ~/.odooops (or --database-url, a Supabase
    project included), migrations, the HTTP API and a worker. Writes ~/.odooops/connection.json.
    On SIGTERM/SIGINT, running runs get --grace seconds (default 20) to finish, then go back to the queue.
    Infrastructure (database servers and where their passwords are, filestore roots, Odoo runtimes,
    allowed repositories, and which projects may use each) is declared by you, the operator, in the
    registry file (--infra, ODOOOPS_INFRA, default ~/.odooops/infrastructure.yaml; SIGHUP reads it again);
    projects only name its entries. Started as root, the tools of runs run as --run-as USER (default
    odooops, created when missing), never as root. With a Supabase control plane, pass its URL and anon key
    as --realtime-url/--realtime-key (or SUPABASE_URL/SUPABASE_ANON_KEY).
    GitHub: POST /api/webhooks/github takes push, pull_request and delete events signed with
    --github-webhook-secret (or ODOOOPS_GITHUB_WEBHOOK_SECRET); commit statuses, deployments and pull
    request comments use the token in ODOOOPS_GITHUB_TOKEN (or GITHUB_TOKEN), read from here only.
    Sign-in: people exchange a GitHub token for a session (POST /api/auth/github); --github-client-id
    (or ODOOOPS_GITHUB_CLIENT_ID) names the GitHub OAuth app whose device flow odooops login runs
    (--github-web-url for GitHub Enterprise). Only tokens issued to VS Code's GitHub sign-in or to that
    app are taken (--github-allowed-client-id adds another app). Session access tokens live --session-ttl seconds (default
    3600) and are refreshed with rotating refresh tokens (30 days unused). Only people a project admin
    invited (odooops member invite) can sign in.
    Built-in run kinds: health, backup {kind: manual|daily|pre-deploy}, restore {backup}, clone {from?,
    backup?, filestore?: assets|placeholders|all|none, profile? (JSON or YAML)}, retention, deploy, destroy,
    verify {backup}.
    Daily backups of production, retention and a weekly verify sample are scheduled; alerts (failed or
    missed backups, failed verifies, stores filling up) go to the registry's alertChannels a project chose. Imports (odooops env import) are limited to
    --max-import-size (or ODOOOPS_MAX_IMPORT_SIZE; default 20G) per upload, 20 times that expanded.`,
  },
  {
    section: 'Server', name: 'worker',
    usage: 'odooops worker --database-url URL [--executors MODULE]... [--infra FILE] [--run-as USER] [--concurrency N] [--lease SECONDS] [--backup-dir DIR] [--work-dir DIR]',
    help: `Only a worker, to add capacity on another machine sharing the same queue. It resolves names with
    its own registry file (give it the same one as the server). Backups go to --backup-dir (default
    ~/.odooops/backups); workers that share backups share that directory.`,
  },
  {
    section: 'Server', name: 'token', usage: 'odooops token [--user UUID] [--email E] [--ttl 30d]',
    help: 'Prints a token signed with this machine\'s local secret (for a teammate or a CI pipeline).',
  },
  {
    section: 'Server', name: 'infra check', usage: 'odooops infra check [--infra FILE]',
    help: 'Reads the registry file as the server would and lists its entries, or says what is wrong; writes and deletes a probe object in each backup store (with its key).',
  },
  {
    section: 'Instance', name: 'admin', usage: 'odooops admin list | grant USER_ID | revoke USER_ID',
    help: 'Instance admins create projects and grant the right to others; the operator\'s own user is one.',
  },
  { section: 'Instance', name: 'infra list', usage: 'odooops infra list [PROJECT]', help: 'The registry\'s entries (instance admins), or those bound to PROJECT (its members).' },
  {
    section: 'Signing in', name: 'login', usage: 'odooops login [--url URL] [--with-token]',
    help: `Signs in to the server with your GitHub account: shows a code to enter at GitHub (its device flow;
    any browser, also over ssh), or --with-token reads a GitHub token from stdin (one of an OAuth app
    the server takes: VS Code's, the server's own, or one its operator allowed). You need an invitation to a project (or to be a member already). The
    session is kept per server in the OS keychain (secret-tool on Linux, the macOS keychain) or else in
    ~/.odooops/credentials.json (mode 0600), refreshed by itself, and this server becomes the default.
    Which server and token a command uses: --url/--token, then ODOOOPS_URL/ODOOOPS_TOKEN, then the session
    stored for that URL (or the default server's), then the local server's ~/.odooops/connection.json.`,
  },
  {
    section: 'Signing in', name: 'logout', usage: 'odooops logout [--url URL]',
    help: `Ends the session on the server (its tokens stop working) and forgets it here. When the server cannot
    be reached it is forgotten anyway (exit 4): its tokens then stay valid until they expire.`,
  },
  { section: 'Instance', name: 'whoami', usage: 'odooops whoami', help: 'Who you are (name, GitHub login, user id: what an admin adds to a project) and whether you are an instance admin.' },
  { section: 'Projects, members, environments', name: 'project list', usage: 'odooops project list' },
  { section: 'Projects, members, environments', name: 'project show', usage: 'odooops project show PROJECT', help: 'Its settings: your role, where its backups go (store and copy), its clones\' password.' },
  { section: 'Projects, members, environments', name: 'project create', usage: 'odooops project create SLUG [--name NAME]', help: 'Instance admins only; you become its admin.' },
  { section: 'Projects, members, environments', name: 'project delete', usage: 'odooops project delete SLUG' },
  {
    section: 'Projects, members, environments', name: 'project set',
    usage: `odooops project set PROJECT [--name NAME] [--clone-password SECRET | --no-clone-password]
           [--backup-store NAME] [--backup-copy NAME | --no-backup-copy]`,
    help: `Admins only. --clone-password names a secret of the operator's registry bound to the project
    (odooops infra list PROJECT): its value becomes the password of the admin and every internal user of
    the project's clones. Never a password itself. --no-clone-password: each clone gets a fresh one.
    --backup-store names the registry's backup store new backups go to ("default": the server's own
    directory); --backup-copy a second store every backup is copied to in the same run (a backup counts
    only once both hold it). Existing backups stay readable where they are.`,
  },
  {
    section: 'Projects, members, environments', name: 'project git',
    usage: `odooops project git PROJECT [--repo-url URL] [--github-repo OWNER/NAME] [--production-branch B]
               [--staging-branch B]... [--staging-mode update|fresh] [--no-production-approval]
               [--dev-url-template 'https://{env}.dev.example.com'] [--build-staging true|false]`,
    help: `Pushes to the production branch deploy production (after an approval unless --no-production-approval),
    to a staging branch its staging environment (fresh: cloned from production first), to any other
    branch a development environment created on the first push and destroyed with the branch. The
    repository must be one the registry allows the project.`,
  },
  {
    section: 'Projects, members, environments', name: 'project masking', usage: 'odooops project masking PROJECT [--set FILE | --reset]',
    help: `The masking profile every clone of the project uses (JSON or YAML, see contract MaskProfile),
    printed as YAML to edit and --set again; admins set it (audited), --reset goes back to the
    default. A clone's own --param profile=… can only make it stricter. No profile lets production
    password hashes, TOTP secrets or API keys into a clone: its users get the clone password instead
    (odooops project set --clone-password).`,
  },
  { section: 'Projects, members, environments', name: 'member list', usage: 'odooops member list PROJECT', help: 'Members by name (the name given with --name, else their GitHub name, else login) and role.' },
  {
    section: 'Projects, members, environments', name: 'member invite', usage: 'odooops member invite PROJECT (--github LOGIN | --email E) --role viewer|developer|tester|admin',
    help: `Admins only. The person becomes a member with that role when they first sign in (odooops login, or
    OdooOps: Sign in in VS Code) with that GitHub login or that verified email, within 14 days. Inviting
    again replaces the invitation.`,
  },
  { section: 'Projects, members, environments', name: 'member invitations', usage: 'odooops member invitations PROJECT', help: 'The project\'s invitations, pending first (admins).' },
  { section: 'Projects, members, environments', name: 'member uninvite', usage: 'odooops member uninvite PROJECT INVITATION_ID', help: 'Withdraws an invitation (admins).' },
  { section: 'Projects, members, environments', name: 'member add', usage: 'odooops member add PROJECT USER_ID --role viewer|developer|tester|admin [--name NAME]' },
  { section: 'Projects, members, environments', name: 'member set-role', usage: 'odooops member set-role PROJECT USER_ID ROLE' },
  { section: 'Projects, members, environments', name: 'member remove', usage: 'odooops member remove PROJECT USER_ID' },
  { section: 'Projects, members, environments', name: 'env list', usage: 'odooops env list PROJECT' },
  { section: 'Projects, members, environments', name: 'env show', usage: 'odooops env show PROJECT ENV' },
  {
    section: 'Projects, members, environments', name: 'env create',
    usage: `odooops env create PROJECT ENV --stage production|staging|development --db-server NAME --db NAME
               [--filestore ROOT] [--branch B] [--url URL]`,
    help: `Admins only. --db-server and --filestore name entries of the registry bound to the project
    (odooops infra list PROJECT); the filestore is ROOT/<database>.`,
  },
  {
    section: 'Projects, members, environments', name: 'env create-dev', usage: 'odooops env create-dev PROJECT BRANCH [--then deploy|clone|nothing]',
    help: `The branch's development environment (dev-<branch>), with production's database server, filestore
    root and runtime and a database of its own; then a deploy of the branch (default with a repository),
    a masked clone of production, or nothing. Developers and admins.`,
  },
  {
    section: 'Projects, members, environments', name: 'env set',
    usage: 'odooops env set PROJECT ENV [--branch B] [--url URL] [--db-server NAME] [--db NAME] [--filestore ROOT | --no-filestore]',
    help: 'Changes an environment; its database server, database and filestore are for admins.',
  },
  {
    section: 'Projects, members, environments', name: 'env deploy-target', usage: 'odooops env deploy-target PROJECT ENV --runtime NAME [--http-port N]',
    help: `How Odoo runs for the environment: a runtime of the registry (odoo-bin on the worker's machine, or a
    host reached over ssh with its fixed command lines). A local runtime takes the first free port of its
    range unless --http-port names one in it.`,
  },
  {
    section: 'Projects, members, environments', name: 'env login', usage: 'odooops env login PROJECT ENV',
    help: `How to log in to ENV's latest masked clone: the logins (admin, and user-<id> for internal users)
    and the password, or the name of the registry secret that is the password. For members who may
    operate ENV (not viewers).`,
  },
  { section: 'Projects, members, environments', name: 'env delete', usage: 'odooops env delete PROJECT ENV' },
  {
    section: 'Projects, members, environments', name: 'env import', usage: 'odooops env import PROJECT ENV FILE [--filestore TARBALL] [--follow]',
    help: `Brings an existing database in: FILE is an Odoo backup zip (dump.sql, filestore/, manifest.json, from
    Odoo's database manager or Odoo.sh) or a pg_dump -Fc file (with --filestore, its filestore as a
    tar or tar.gz). Streamed to the server, checked (an Odoo database of the environment's major
    version; only pg_dump's statements run), kept as a backup of kind import, then restored beside
    the environment and switched in. Into production: prints the approval to request first.`,
  },
  {
    section: 'Runs', name: 'run queue',
    usage: `odooops run queue PROJECT ENV KIND [--param KEY=VALUE]... [--params JSON] [--idempotency-key K]
               [--approval ID] [--max-attempts N] [--wait] [--follow]`,
  },
  { section: 'Runs', name: 'run list', usage: 'odooops run list [--project P] [--env E] [--status S] [--limit N]' },
  { section: 'Runs', name: 'run show', usage: 'odooops run show RUN_ID' },
  { section: 'Runs', name: 'run wait', usage: 'odooops run wait RUN_ID [--timeout SECONDS]', help: 'Exit 0 when it succeeded, 1 when it failed or was cancelled.' },
  { section: 'Runs', name: 'run logs', usage: 'odooops run logs RUN_ID [--follow] [--after SEQ]' },
  { section: 'Runs', name: 'run cancel', usage: 'odooops run cancel RUN_ID' },
  {
    section: 'Runs', name: 'run retry', usage: 'odooops run retry RUN_ID [--wait] [--follow]',
    help: 'Runs a failed run again as its next attempt, as it was queued (same parameters; its approval while valid).',
  },
  { section: 'Runs', name: 'approval list', usage: 'odooops approval list PROJECT' },
  { section: 'Runs', name: 'approval request', usage: 'odooops approval request PROJECT ENV KIND [--params JSON] [--reason TEXT]' },
  { section: 'Runs', name: 'approval approve', usage: 'odooops approval approve APPROVAL_ID' },
  { section: 'Runs', name: 'approval reject', usage: 'odooops approval reject APPROVAL_ID' },
  { section: 'Runs', name: 'backup list', usage: 'odooops backup list PROJECT ENV' },
  {
    section: 'Runs', name: 'backup download', usage: 'odooops backup download BACKUP_ID [--output FILE]',
    help: `Odoo's database-manager zip (dump.sql, filestore/), for Odoo's own database manager or Odoo.sh;
    FILE defaults to <database>_<YYYY-MM-DD_HH-MM-SS>.zip (the backup's time, UTC), as Odoo's database
    manager names its backups; the extension's save dialog proposes the same name.`,
  },
  {
    section: 'Runs', name: 'backup verify', usage: 'odooops backup verify BACKUP_ID [--json]',
    help: `Queues a verify run on the backup's environment and follows its log: every part is read back from
    the store and checked against its recorded SHA-256 (manifest, dump, filestore); nothing is changed.
    Exit 1 when a part is damaged or missing (that also alerts the project). Whoever may back the
    environment up may verify its backups; each environment's newest backup and a random older one are
    also verified once a week by the scheduler.`,
  },
  {
    section: 'Runs', name: 'alerts', usage: 'odooops alerts PROJECT [--limit N]',
    help: `The project's recent alerts (failed or missed backups, failed verifies, backup stores filling up)
    and how each was delivered; members read them.`,
  },
  {
    section: 'Projects, members, environments', name: 'project alerts', usage: 'odooops project alerts PROJECT [--channel NAME]... [--email ADDRESS]... [--none]',
    help: `Admins only. Where the project's alerts go: alert channels of the operator's registry bound to the
    project (odooops infra list PROJECT: webhooks and SMTP servers), and for SMTP channels the addresses
    to mail (at most 20). The channels given replace the ones set; --none stops sending (alerts are still
    listed and shown in VS Code). Without options, shows the settings.`,
  },
  { section: 'Runs', name: 'audit', usage: 'odooops audit PROJECT [--limit N]', help: 'The project\'s audit log (admins).' },
  {
    section: 'Development databases', name: 'dev pull',
    usage: `odooops dev pull PROJECT [--from ENV] [--db NAME] [--filestore DIR] [--base-url URL] [--if-missing]
               [--queue-clone ENV] [--odoo-version 16.0|17.0|18.0|19.0]`,
    help: `Restores the newest masked clone of ENV (default production) into the local PostgreSQL (libpq's
    PGHOST/PGPORT/PGUSER; the local socket by default) as NAME (default odoo), its filestore into DIR
    (default ~/.local/share/Odoo/filestore/NAME), checksums verified, and points web.base.url at this
    machine (a Codespace's forwarded port 8069, or http://localhost:8069). Only masked clones are ever
    served. --if-missing keeps an existing NAME; --queue-clone queues a clone into ENV when there is none.`,
  },
  {
    section: 'Projects, members, environments', name: 'env shell', usage: 'odooops env shell PROJECT ENV [--psql | --odoo] [--yes-production]',
    help: `A terminal on ENV through the server: bash in its checkout with its database in PG* variables (as
    the run user), --psql on its database, or --odoo its runtime's odoo-bin shell. For members who may
    operate ENV, on runtimes the operator allows shells on (shells: true in the registry); production:
    admins, with --yes-production, and recorded (what is typed included). Ends after 30 minutes without
    input; exits with the remote process's exit code.`,
  },
  {
    section: 'Projects, members, environments', name: 'env shell-log', usage: 'odooops env shell-log PROJECT [--limit N]',
    help: 'The project\'s shell sessions (admins): who opened which kind where, from where, when, how it ended; production\'s with what was typed.',
  },
  {
    section: 'Projects, members, environments', name: 'env logs', usage: 'odooops env logs PROJECT ENV [--follow] [--level debug|info|warning|error|critical] [--lines N]',
    help: `The running Odoo's own log (odoo.log) of ENV: its last N lines (default 100, at most 5000), of the
    level given and above (a traceback stays with its line), read as they are now (a few seconds). --follow keeps printing new lines until
    Ctrl-C, across Odoo restarts and log rotation; as on Odoo.sh the server reads the log only while
    someone follows it. For members who may operate ENV (not viewers; developers: development only).`,
  },
];

const FOOTER = `Common options: --json (machine-readable output), --url URL and --token T (or ODOOOPS_URL and
ODOOOPS_TOKEN; else the session odooops login stored for that URL or the default server; else the local
server found in ~/.odooops), --home DIR (or ODOOOPS_HOME).
Exit codes: 0 ok, 1 run failed or cancelled, 2 usage, 3 refused by the server, 4 server unreachable, 5 server error.`;

const describe = (c: (typeof COMMANDS)[number]) => `  ${c.usage}${c.help ? `\n      ${c.help.replace(/\n {4}/g, '\n      ')}` : ''}`;

const USAGE = `odooops — run self-hosted Odoo like Odoo.sh

${[...new Set(COMMANDS.map((c) => c.section))].map((section) => `${section}\n${COMMANDS.filter((c) => c.section === section).map(describe).join('\n')}`).join('\n\n')}

${FOOTER}`;

/** The commands `words` (e.g. ["env"], ["env", "set"]) names; none: it is not a command. */
export function commandsNamed(words: string[]): typeof COMMANDS {
  const [first, second] = words;
  const exact = COMMANDS.filter((c) => c.name === `${first} ${second}` || (c.name === first && !c.name.includes(' ')));
  if (exact.length) return exact;
  return second === undefined ? COMMANDS.filter((c) => c.name.split(' ')[0] === first) : [];
}

const OPTIONS = {
  json: { type: 'boolean' }, url: { type: 'string' }, token: { type: 'string' }, home: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  'database-url': { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, demo: { type: 'boolean' },
  executors: { type: 'string', multiple: true }, 'jwt-secret': { type: 'string' }, 'jwks-url': { type: 'string' },
  'realtime-url': { type: 'string' }, 'realtime-key': { type: 'string' },
  infra: { type: 'string' }, 'run-as': { type: 'string' }, 'db-server': { type: 'string' }, runtime: { type: 'string' }, then: { type: 'string' },
  'no-filestore': { type: 'boolean' }, 'clone-password': { type: 'string' }, 'no-clone-password': { type: 'boolean' }, 'backup-store': { type: 'string' }, 'backup-copy': { type: 'string' }, 'no-backup-copy': { type: 'boolean' }, 'backup-dir': { type: 'string' }, set: { type: 'string' }, reset: { type: 'boolean' }, concurrency: { type: 'string' }, lease: { type: 'string' }, grace: { type: 'string' }, 'no-worker': { type: 'boolean' }, fast: { type: 'boolean' },
  user: { type: 'string' }, email: { type: 'string', multiple: true }, ttl: { type: 'string' },
  channel: { type: 'string', multiple: true }, none: { type: 'boolean' },
  name: { type: 'string' }, role: { type: 'string' }, stage: { type: 'string' }, db: { type: 'string' },
  filestore: { type: 'string' }, branch: { type: 'string' },
  param: { type: 'string', multiple: true }, params: { type: 'string' }, 'idempotency-key': { type: 'string' },
  output: { type: 'string', short: 'o' }, from: { type: 'string' }, 'base-url': { type: 'string' }, 'if-missing': { type: 'boolean' },
  'queue-clone': { type: 'string' }, 'github-webhook-secret': { type: 'string' }, 'github-api-url': { type: 'string' }, 'work-dir': { type: 'string' },
  'repo-url': { type: 'string' }, 'github-repo': { type: 'string' }, 'production-branch': { type: 'string' }, 'staging-branch': { type: 'string', multiple: true },
  'staging-mode': { type: 'string' }, 'no-production-approval': { type: 'boolean' }, 'dev-url-template': { type: 'string' },
  'build-staging': { type: 'string' },
  'odoo-bin': { type: 'string' }, 'http-port': { type: 'string' }, target: { type: 'string' }, 'odoo-version': { type: 'string' },
  'max-import-size': { type: 'string' },
  github: { type: 'string' }, 'with-token': { type: 'boolean' }, 'github-client-id': { type: 'string' }, 'github-allowed-client-id': { type: 'string', multiple: true }, 'github-web-url': { type: 'string' },
  'session-ttl': { type: 'string' },
  approval: { type: 'string' }, 'max-attempts': { type: 'string' }, wait: { type: 'boolean' }, follow: { type: 'boolean' },
  project: { type: 'string' }, env: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' },
  timeout: { type: 'string' }, after: { type: 'string' }, reason: { type: 'string' },
  psql: { type: 'boolean' }, odoo: { type: 'boolean' }, 'yes-production': { type: 'boolean' },
  level: { type: 'string' }, lines: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const usage = (message: string) => new CliError(message, EXIT.usage, 'Run `odooops --help` for the commands.');
const importSize = (v: string | undefined) => {
  if (v === undefined) return undefined;
  try {
    return parseSize(v);
  } catch (err) {
    throw usage(`--max-import-size: ${(err as Error).message}`);
  }
};
const sessionTtl = (v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2 || n > 86_400) throw usage('--session-ttl takes whole seconds, from 2 to 86400 (a day)');
  return n;
};

/**
 * The API client a command uses: --url/--token or ODOOOPS_URL/ODOOOPS_TOKEN first; then the session
 * odooops login stored for that URL (or the default server's), refreshed as it goes; then the local
 * server's connection.json.
 */
async function cliApi(values: Values): Promise<ApiClient> {
  const url = values.url ?? process.env.ODOOOPS_URL;
  if (!(values.token ?? process.env.ODOOOPS_TOKEN)) {
    const { CredentialStore } = await import('./credentials.ts');
    const { SessionManager } = await import('../../client/session.ts');
    const { odooopsHome } = await import('../../contract/home.ts');
    const store = new CredentialStore(odooopsHome(values.home));
    const server = url ?? store.defaultServer();
    if (server && store.has(server)) {
      const sm = new SessionManager({ url: server, storage: store.storageFor(server) });
      const session = await sm.load();
      if (session) {
        const api = new ApiClient({ url: server, token: session.accessToken });
        sm.attach(api);
        return api;
      }
    }
  }
  return new ApiClient(resolveTarget({ url: values.url, token: values.token, home: values.home }));
}
const num = (v: string | undefined, what: string) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw usage(`${what} must be a number, not "${v}"`);
  return n;
};
const arg = (pos: string[], i: number, what: string) => {
  const v = pos[i];
  if (v === undefined) throw usage(`missing ${what}`);
  return v;
};
const enc = encodeURIComponent;
/** An option given at most once (--email may be repeated only by project alerts). */
const once = (v: string[] | undefined, what: string) => {
  if (v && v.length > 1) throw usage(`${what} is given once here`);
  return v?.[0];
};

function parseParams(values: Values): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (values.params) {
    try {
      params = z.record(z.string(), z.unknown()).parse(JSON.parse(values.params));
    } catch {
      throw usage('--params must be a JSON object, e.g. --params \'{"backup": "…"}\'');
    }
  }
  for (const p of values.param ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw usage(`--param takes KEY=VALUE, not "${p}"`);
    params[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return params;
}

/** A built-in kind's params, checked before anything is sent (the server checks them again, and what they name). */
function checkedParams(kind: string, values: Values): Record<string, unknown> {
  const params = parseParams(values);
  const problems = runParamsProblems(kind, params);
  if (problems) throw new CliError(`invalid params for a ${kind} run: ${problems.join('; ')}`, EXIT.usage, 'Nothing was queued; fix the --param and run the command again.');
  return params;
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '-' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where a project's backups go, by the registry's names. */
function backupsWhere(p: C.Project): string {
  return `store "${p.backupStore ?? 'default'}"${p.backupCopy ? `, copied to "${p.backupCopy}"` : ', no copy'}`;
}

function runLine(r: C.Run): string {
  return `run ${r.id} ${r.kind} on ${r.project}/${r.environment}: ${r.status}${r.error ? ` (${r.error})` : ''}`;
}

async function waitFor(api: ApiClient, id: number, timeoutS?: number): Promise<C.Run> {
  const deadline = timeoutS === undefined ? Infinity : Date.now() + timeoutS * 1000;
  for (;;) {
    const run = await api.get(`/api/runs/${id}`, C.Run);
    if ((C.TERMINAL_STATUSES as readonly string[]).includes(run.status)) return run;
    if (Date.now() > deadline) throw new CliError(`run ${id} is still ${run.status} after ${timeoutS} s`, EXIT.runFailed);
    if (process.stderr.isTTY) process.stderr.write(`\rrun ${id}: ${run.status}, attempt ${run.attempts}…`);
    await sleep(500);
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage((err as Error).message);
  }
  const { values, positionals: pos } = parsed;
  const [cmd, sub] = pos;
  if (!cmd || cmd === 'help') {
    console.log(USAGE);
    return cmd || values.help ? EXIT.ok : EXIT.usage;
  }
  if (values.help) {
    const named = commandsNamed(pos.slice(0, 2));
    if (!named.length) throw usage(`unknown command: ${pos.slice(0, 2).join(' ')}`);
    console.log(`${named.map(describe).join('\n')}\n\n${FOOTER}`);
    return EXIT.ok;
  }
  const print = (data: unknown, human: () => string) => console.log(values.json ? JSON.stringify(data, null, 2) : human());

  if (cmd === 'server' || cmd === 'worker') {
    const { serve } = await import('./serve.ts');
    const realtimeUrl = values['realtime-url'] ?? process.env.SUPABASE_URL;
    const realtimeKey = values['realtime-key'] ?? process.env.SUPABASE_ANON_KEY;
    if (!realtimeUrl !== !realtimeKey || (realtimeUrl && !URL.canParse(realtimeUrl))) {
      throw new CliError('--realtime-url needs --realtime-key, and the URL must be absolute', EXIT.usage,
        'Pass your Supabase project URL (https://<ref>.supabase.co) and its anon key, or neither to use this server\'s own Realtime gateway.');
    }
    return serve(cmd, {
      home: values.home, databaseUrl: values['database-url'], port: num(values.port, '--port'), host: values.host,
      demo: values.demo, executorModules: values.executors, jwtSecret: values['jwt-secret'] ?? process.env.SUPABASE_JWT_SECRET,
      jwksUrl: values['jwks-url'],
      realtimeUrl, realtimeKey,
      concurrency: num(values.concurrency, '--concurrency'), leaseSeconds: num(values.lease, '--lease'),
      worker: !values['no-worker'], fast: values.fast, infraFile: values.infra, runAs: values['run-as'], backupDir: values['backup-dir'],
      githubWebhookSecret: values['github-webhook-secret'] ?? process.env.ODOOOPS_GITHUB_WEBHOOK_SECRET,
      githubToken: process.env.ODOOOPS_GITHUB_TOKEN ?? process.env.GITHUB_TOKEN, githubApiUrl: values['github-api-url'],
      workDir: values['work-dir'], maxImportBytes: importSize(values['max-import-size'] ?? process.env.ODOOOPS_MAX_IMPORT_SIZE),
      githubClientId: values['github-client-id'] ?? process.env.ODOOOPS_GITHUB_CLIENT_ID, githubWebUrl: values['github-web-url'],
      githubAllowedClientIds: values['github-allowed-client-id'],
      sessionTtlSeconds: sessionTtl(values['session-ttl']),
    }, (num(values.grace, '--grace') ?? 20) * 1000);
  }
  if (cmd === 'infra' && sub === 'check') {
    const { Infrastructure } = await import('../infra/registry.ts');
    const { homeFiles, odooopsHome } = await import('../paths.ts');
    const file = values.infra ?? process.env.ODOOOPS_INFRA ?? homeFiles(odooopsHome(values.home)).infrastructure;
    let infra;
    try {
      infra = Infrastructure.load(file);
    } catch (err) {
      throw new CliError((err as Error).message, EXIT.usage, 'Fix the file and run odooops infra check again; the server reads it at start and on SIGHUP.');
    }
    if (infra.warnings.length) throw new CliError(infra.warnings.join('\n'), EXIT.usage, 'Fix the file and run odooops infra check again; the server reads it at start and on SIGHUP.');
    // Backup stores: reached from this machine (a probe object written and deleted), their keys parsed.
    const stores = await infra.checkBackupStores();
    const failed = stores.filter((x) => x.problem);
    if (failed.length) {
      throw new CliError(failed.map((x) => `backup store "${x.name}": ${x.problem}`).join('\n'), EXIT.usage,
        'Fix the store (its path, endpoint, credentials or key) and run odooops infra check again; backups to it fail until then.');
    }
    const entries = infra.entries();
    print(entries, () => `${file}: ${entries.length} entries\n${table(entries.map((e) => ({ ...e, projects: e.projects?.join(',') })), ['kind', 'name', 'projects', 'description'])}` +
      (stores.length ? `\nbackup stores reached (an object written and deleted): ${stores.map((x) => x.name).join(', ')}` : ''));
    return EXIT.ok;
  }
  if (cmd === 'token') {
    const { localIdentity, signToken } = await import('../auth/tokens.ts');
    const { odooopsHome } = await import('../paths.ts');
    const id = localIdentity(odooopsHome(values.home));
    const sub = values.user ? C.Uuid.safeParse(values.user) : { success: true as const, data: id.userId };
    if (!sub.success) throw usage('--user must be a user id (UUID)');
    console.log(await signToken(id.secret, { sub: sub.data, email: once(values.email, '--email') }, values.ttl ?? '30d'));
    return EXIT.ok;
  }

  if (cmd === 'login') {
    const { login } = await import('./login.ts');
    const tty = process.stderr.isTTY;
    const r = await login({
      url: values.url, home: values.home, withToken: values['with-token'],
      io: { say: (l) => console.error(l), progress: (l) => (tty ? process.stderr.write(`\r${l}\x1b[K`) : undefined) },
    });
    if (tty && !values['with-token']) process.stderr.write('\n');
    print(r, () => [
      `Signed in to ${r.server} as ${r.user.name ?? r.user.githubLogin}${r.user.githubLogin ? ` (${r.user.githubLogin})` : ''}; the session is kept in ${r.storedIn}.`,
      ...r.joined.map((j) => `Joined ${j.project} as ${j.role}.`),
    ].join('\n'));
    return EXIT.ok;
  }
  if (cmd === 'logout') {
    const { logout } = await import('./login.ts');
    const r = await logout({ url: values.url, home: values.home });
    if (!r.signedIn) {
      print(r, () => `not signed in to ${r.server}; nothing to do`);
      return EXIT.ok;
    }
    if (!r.revoked) {
      print(r, () => `Forgot the session for ${r.server} here, but could not end it on the server (${r.error}): its tokens stay valid until they expire (the access token within its lifetime, an hour by default; the refresh token after 30 days unused).`);
      return EXIT.unreachable;
    }
    print(r, () => `Signed out of ${r.server}: the session has ended.`);
    return EXIT.ok;
  }

  const api = await cliApi(values);
  const P = (i: number) => enc(arg(pos, i, 'PROJECT'));
  const runId = (i: number) => {
    const id = Number(arg(pos, i, 'RUN_ID'));
    if (!Number.isInteger(id) || id <= 0) throw usage(`RUN_ID must be a positive number, not "${pos[i]}"`);
    return id;
  };

  // One-word commands take their first argument where others have their subcommand.
  const ONE_WORD = ['whoami', 'audit', 'alerts'];
  switch (ONE_WORD.includes(cmd) ? cmd : `${cmd} ${sub ?? ''}`.trim()) {
    case 'whoami': {
      const me = await api.get('/api/me', C.Me);
      const who = me.name ? `${me.name}${me.githubLogin && me.githubLogin !== me.name ? ` (${me.githubLogin})` : ''}, ${me.userId}` : me.userId;
      print(me, () => `${who}${me.email ? ` <${me.email}>` : ''} at ${api.target.url}${me.instanceAdmin ? ', instance admin' : ''}`);
      return EXIT.ok;
    }
    case 'project list': {
      const list = await api.get('/api/projects', z.array(C.Project));
      print(list, () => table(list.map((p) => ({ ...p, backups: backupsWhere(p) })), ['slug', 'name', 'role', 'backups']));
      return EXIT.ok;
    }
    case 'project show': {
      const p = await api.get(`/api/projects/${P(2)}`, C.Project);
      print(p, () => [
        `${p.slug}: ${p.name} (you: ${p.role ?? 'not a member'})`,
        `backups: ${backupsWhere(p)}`,
        `clones' password: ${p.clonePasswordSecret ? `the registry secret "${p.clonePasswordSecret}"` : 'a fresh one per clone'}`,
      ].join('\n'));
      return EXIT.ok;
    }
    case 'project create': {
      const slug = arg(pos, 2, 'SLUG');
      const { data } = await api.request('POST', '/api/projects', C.Project, { slug, name: values.name ?? slug });
      print(data, () => `created project ${data.slug}; you are its admin`);
      return EXIT.ok;
    }
    case 'project delete': {
      await api.request('DELETE', `/api/projects/${P(2)}`, z.null());
      print({ deleted: pos[2] }, () => `deleted project ${pos[2]}`);
      return EXIT.ok;
    }
    case 'project set': {
      if (values['clone-password'] !== undefined && values['no-clone-password']) throw usage('give --clone-password SECRET or --no-clone-password, not both');
      if (values['backup-copy'] !== undefined && values['no-backup-copy']) throw usage('give --backup-copy NAME or --no-backup-copy, not both');
      const body: C.UpdateProject = {
        ...(values.name !== undefined ? { name: values.name } : {}),
        ...(values['clone-password'] !== undefined ? { clonePasswordSecret: values['clone-password'] } : values['no-clone-password'] ? { clonePasswordSecret: null } : {}),
        ...(values['backup-store'] !== undefined ? { backupStore: values['backup-store'] } : {}),
        ...(values['backup-copy'] !== undefined ? { backupCopy: values['backup-copy'] } : values['no-backup-copy'] ? { backupCopy: null } : {}),
      };
      if (!Object.keys(body).length) throw usage('nothing to change: give --name, --clone-password SECRET, --no-clone-password, --backup-store NAME, --backup-copy NAME or --no-backup-copy');
      const { data } = await api.request('PATCH', `/api/projects/${P(2)}`, C.Project, body);
      print(data, () => `${data.slug}: ${data.name}; clones' password: ${data.clonePasswordSecret ? `the registry secret "${data.clonePasswordSecret}"` : 'a fresh one per clone (odooops env login PROJECT ENV)'}; backups: ${backupsWhere(data)}`);
      return EXIT.ok;
    }
    case 'env login': {
      const data = await api.get(`/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}/clone-login`, C.CloneLogin);
      print(data, () => [
        `${data.environment}, cloned by run ${data.runId} at ${data.createdAt}`,
        `logins: ${data.logins.join(', ')}`,
        data.password !== null ? `password: ${data.password}` : `password: the value of the registry secret "${data.passwordSecret}" (ask the operator)`,
      ].join('\n'));
      return EXIT.ok;
    }
    case 'project masking': {
      const path = `/api/projects/${P(2)}/masking`;
      if (values.set !== undefined && values.reset) throw usage('give --set FILE or --reset, not both');
      const YAML = await import('yaml');
      let data: C.ProjectMasking;
      if (values.set !== undefined) {
        const { readFile } = await import('node:fs/promises');
        let profile: unknown;
        try {
          // YAML is a superset of JSON: one parser takes both; the server checks the profile itself.
          profile = YAML.parse(await readFile(values.set, 'utf8'));
        } catch (err) {
          throw usage(`--set ${values.set}: not a readable JSON or YAML file: ${(err as Error).message.split('\n')[0]}`);
        }
        ({ data } = await api.request('PUT', path, C.ProjectMasking, profile));
      } else if (values.reset) {
        ({ data } = await api.request('DELETE', path, C.ProjectMasking));
      } else {
        data = await api.get(path, C.ProjectMasking);
      }
      print(data, () => [
        `# masking profile of ${pos[2]}: ${data.isDefault ? "OdooOps's default (the project has none of its own)" : 'set by a project admin'}`,
        `# ${Object.keys(data.profile.columns).length} columns masked, ${data.profile.truncate.length} tables emptied; runs can only make it stricter`,
        ...data.floors.map((f) => `# floor: ${f}`),
        YAML.stringify(data.profile).trimEnd(),
      ].join('\n'));
      return EXIT.ok;
    }
    case 'member list': {
      const list = await api.get(`/api/projects/${P(2)}/members`, z.array(C.Member));
      print(list, () => table(list.map((m) => ({ ...m, name: m.name ?? m.displayName })), ['name', 'githubLogin', 'role', 'userId']));
      return EXIT.ok;
    }
    case 'member invite': {
      const email = once(values.email, '--email');
      if (!values.github === !email) throw usage('give --github LOGIN or --email E (one of them)');
      if (!values.role) throw usage('--role is required: viewer, developer, tester or admin');
      const { status, data } = await api.request('POST', `/api/projects/${P(2)}/invitations`, C.Invitation, {
        ...(values.github ? { githubLogin: values.github } : { email }), role: values.role,
      });
      const who = data.githubLogin ? `GitHub user ${data.githubLogin}` : data.email;
      print(data, () => `${status === 200 ? 'invited again' : 'invited'} ${who} to ${data.project} as ${data.role} until ${data.expiresAt}: they join when they sign in (odooops login, or OdooOps: Sign in in VS Code) to ${api.target.url}`);
      return EXIT.ok;
    }
    case 'member invitations': {
      const list = await api.get(`/api/projects/${P(2)}/invitations`, z.array(C.Invitation));
      print(list, () => table(list.map((i) => ({ ...i, who: i.githubLogin ? `github:${i.githubLogin}` : `email:${i.email}`, status: i.acceptedAt ? `accepted ${i.acceptedAt}` : Date.parse(i.expiresAt) < Date.now() ? 'expired' : `pending until ${i.expiresAt}` })),
        ['id', 'who', 'role', 'status']));
      return EXIT.ok;
    }
    case 'member uninvite': {
      await api.request('DELETE', `/api/projects/${P(2)}/invitations/${enc(arg(pos, 3, 'INVITATION_ID'))}`, z.null());
      print({ withdrawn: pos[3] }, () => `withdrew invitation ${pos[3]}`);
      return EXIT.ok;
    }
    case 'member add': {
      const { data } = await api.request('POST', `/api/projects/${P(2)}/members`, C.Member, {
        userId: arg(pos, 3, 'USER_ID'), role: values.role ?? 'developer', ...(values.name ? { displayName: values.name } : {}),
      });
      print(data, () => `added ${data.userId} as ${data.role}`);
      return EXIT.ok;
    }
    case 'member set-role': {
      const { data } = await api.request('PATCH', `/api/projects/${P(2)}/members/${enc(arg(pos, 3, 'USER_ID'))}`, C.Member, {
        role: arg(pos, 4, 'ROLE'),
      });
      print(data, () => `${data.userId} is now ${data.role}`);
      return EXIT.ok;
    }
    case 'member remove': {
      await api.request('DELETE', `/api/projects/${P(2)}/members/${enc(arg(pos, 3, 'USER_ID'))}`, z.null());
      print({ removed: pos[3] }, () => `removed ${pos[3]}`);
      return EXIT.ok;
    }
    case 'env list': {
      const list = await api.get(`/api/projects/${P(2)}/environments`, z.array(C.Environment));
      print(list, () => table(list.map((e) => ({ ...e, db: e.database.name, running: e.activeRunId })), ['name', 'stage', 'branch', 'db', 'url', 'running']));
      return EXIT.ok;
    }
    case 'env show': {
      const e = await api.get(`/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}`, C.Environment);
      print(e, () => JSON.stringify(e, null, 2));
      return EXIT.ok;
    }
    case 'project git': {
      const body: C.ProjectGit = {
        ...(values['repo-url'] !== undefined ? { repoUrl: values['repo-url'] } : {}),
        ...(values['github-repo'] !== undefined ? { githubRepo: values['github-repo'] } : {}),
        ...(values['production-branch'] !== undefined ? { productionBranch: values['production-branch'] } : {}),
        ...(values['staging-branch'] !== undefined ? { stagingBranches: values['staging-branch'] } : {}),
        ...(values['staging-mode'] !== undefined ? { stagingMode: values['staging-mode'] as 'update' | 'fresh' } : {}),
        ...(values['no-production-approval'] ? { productionNeedsApproval: false } : {}),
        ...(values['dev-url-template'] !== undefined ? { devUrlTemplate: values['dev-url-template'] } : {}),
        ...(values['build-staging'] !== undefined ? { buildStaging: onOff(values['build-staging'], '--build-staging') } : {}),
      };
      const { data } = await api.request('PUT', `/api/projects/${P(2)}/git`, C.ProjectGitSettings, body);
      print(data, () => JSON.stringify(data, null, 2));
      return EXIT.ok;
    }
    case 'env deploy-target': {
      if (!values.runtime) throw usage('--runtime NAME is required (odooops infra list PROJECT shows the runtimes)');
      const target: C.DeployTarget = { runtime: values.runtime, ...(values['http-port'] ? { httpPort: num(values['http-port'], '--http-port') } : {}) };
      const { data } = await api.request('PUT', `/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}/deploy-target`, C.Environment, target);
      print(data, () => `${data.name} runs Odoo with the runtime ${data.runtime?.name}${data.runtime?.httpPort ? ` on port ${data.runtime.httpPort}` : ''}`);
      return EXIT.ok;
    }
    case 'env create': {
      if (!values.stage) throw usage('--stage is required (production, staging or development)');
      if (!values['db-server']) throw usage('--db-server is required: a database server of the registry (odooops infra list PROJECT)');
      if (!values.db) throw usage('--db (the Odoo database name) is required');
      const body = {
        name: arg(pos, 3, 'ENV'), stage: values.stage,
        ...(values.branch ? { branch: values.branch } : {}), ...(values.url ? { url: values.url } : {}),
        ...(values.filestore ? { filestore: values.filestore } : {}),
        database: { server: values['db-server'], name: values.db },
      };
      const { data } = await api.request('POST', `/api/projects/${P(2)}/environments`, C.Environment, body);
      print(data, () => `created ${data.stage} environment ${data.project}/${data.name} on database ${data.database.name} (server ${data.database.server})`);
      return EXIT.ok;
    }
    case 'env set': {
      if (values.filestore && values['no-filestore']) throw usage('give --filestore ROOT or --no-filestore, not both');
      const database = { ...(values['db-server'] ? { server: values['db-server'] } : {}), ...(values.db ? { name: values.db } : {}) };
      const body: C.UpdateEnvironment = {
        ...(values.branch !== undefined ? { branch: values.branch } : {}), ...(values.url !== undefined ? { url: values.url } : {}),
        ...(Object.keys(database).length ? { database } : {}),
        ...(values.filestore ? { filestore: values.filestore } : values['no-filestore'] ? { filestore: null } : {}),
      };
      if (!Object.keys(body).length) throw usage('nothing to change: give --branch, --url, --db-server, --db, --filestore or --no-filestore');
      const { data } = await api.request('PATCH', `/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}`, C.Environment, body);
      print(data, () => JSON.stringify(data, null, 2));
      return EXIT.ok;
    }
    case 'env create-dev': {
      const then = values.then;
      if (then !== undefined && !['deploy', 'clone', 'nothing'].includes(then)) throw usage('--then takes deploy, clone or nothing');
      const { status, data } = await api.request('POST', `/api/projects/${P(2)}/dev-environments`, C.DevEnvironment, {
        branch: arg(pos, 3, 'BRANCH'), ...(then ? { then } : {}),
      });
      print(data, () => `${status === 201 ? 'created' : 'found'} ${data.environment.project}/${data.environment.name} (database ${data.environment.database.name})${data.run ? `; queued ${runLine(data.run)}` : ''}`);
      return EXIT.ok;
    }
    case 'admin list': {
      const list = await api.get('/api/admin/instance-admins', z.array(C.InstanceAdmin));
      print(list, () => table(list, ['userId', 'addedBy', 'addedAt']));
      return EXIT.ok;
    }
    case 'admin grant': {
      const { data } = await api.request('POST', '/api/admin/instance-admins', C.InstanceAdmin, { userId: arg(pos, 2, 'USER_ID') });
      print(data, () => `${data.userId} is an instance admin: they may create projects`);
      return EXIT.ok;
    }
    case 'admin revoke': {
      await api.request('DELETE', `/api/admin/instance-admins/${enc(arg(pos, 2, 'USER_ID'))}`, z.null());
      print({ revoked: pos[2] }, () => `${pos[2]} is no longer an instance admin`);
      return EXIT.ok;
    }
    case 'infra list': {
      const list = await api.get(pos[2] ? `/api/projects/${P(2)}/infrastructure` : '/api/infrastructure', z.array(C.InfraEntry));
      print(list, () => table(list.map((e) => ({ ...e, projects: e.projects?.join(','), details: JSON.stringify(e.details) })), [
        'kind', 'name', ...(pos[2] ? [] : ['projects']), 'description']));
      return EXIT.ok;
    }
    case 'env import': {
      const { importFile } = await import('./import.ts');
      return importFile(api, P(2), enc(arg(pos, 3, 'ENV')), arg(pos, 4, 'FILE'), { filestore: values.filestore, follow: values.follow, json: values.json });
    }
    case 'env logs': {
      const env = arg(pos, 3, 'ENV');
      const level = values.level === undefined ? undefined : C.OdooLogLevel.safeParse(values.level.toLowerCase());
      if (level && !level.success) throw usage(`--level takes one of ${C.ODOO_LOG_LEVELS.join(', ')}`);
      const lines = num(values.lines, '--lines') ?? 100;
      if (!Number.isInteger(lines) || lines < 0 || lines > 5000) throw usage('--lines takes a whole number from 0 to 5000');
      const out = (l: C.OdooLogLine) => console.log(values.json ? JSON.stringify(l) : l.line);
      if (!values.follow) {
        // The server reads the log only while someone follows: follow briefly (the worker reads what was
        // written since it last did, or the file's last lines), until nothing new comes for a second.
        const base = `/api/projects/${P(2)}/environments/${enc(env)}`;
        const lease = (await api.request('POST', `${base}/odoo-log/follow`, C.OdooLogFollow, {})).data;
        if (lease.problem) console.error(lease.problem);
        const read = () => api.get(`${base}/odoo-log?tail=${lines}${level ? `&level=${level.data}` : ''}`, C.OdooLogPage);
        let page = await read();
        for (const start = Date.now(); !lease.problem && Date.now() - start < 8000;) {
          await new Promise((r) => setTimeout(r, 1000));
          const next = await read();
          const same = next.nextAfter === page.nextAfter;
          page = next;
          // Settled: lines came and stopped, or none came for a few seconds (nothing new was written).
          if (same && (page.nextAfter > lease.lastSeq || Date.now() - start >= 3000)) break;
        }
        page.lines.forEach(out);
        return EXIT.ok;
      }
      const stop = new AbortController();
      const quit = () => stop.abort();
      process.once('SIGINT', quit).once('SIGTERM', quit);
      try {
        await followOdooLog(api, arg(pos, 2, 'PROJECT'), env, out, { tail: lines, level: level?.data, signal: stop.signal, onProblem: (p) => console.error(p) });
      } finally {
        process.off('SIGINT', quit).off('SIGTERM', quit);
      }
      return EXIT.ok;
    }
    case 'env delete': {
      await api.request('DELETE', `/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}`, z.null());
      print({ deleted: pos[3] }, () => `deleted environment ${pos[3]}`);
      return EXIT.ok;
    }
    case 'run queue': {
      const [project, env, kind] = [P(2), enc(arg(pos, 3, 'ENV')), arg(pos, 4, 'KIND')];
      const body = {
        kind, params: checkedParams(kind, values),
        ...(values['idempotency-key'] ? { idempotencyKey: values['idempotency-key'] } : {}),
        ...(values.approval ? { approvalId: values.approval } : {}),
        ...(values['max-attempts'] ? { maxAttempts: num(values['max-attempts'], '--max-attempts') } : {}),
      };
      const { status, data: run } = await api.request('POST', `/api/projects/${project}/environments/${env}/runs`, C.Run, body);
      if (!values.wait && !values.follow) {
        print(run, () => (status === 201 ? `queued ${runLine(run)}` : `already queued with this idempotency key: ${runLine(run)}`));
        return EXIT.ok;
      }
      if (!values.json) console.error(`queued run ${run.id}`);
      return finishWait(api, run.id, values);
    }
    case 'run list': {
      const q = new URLSearchParams();
      for (const k of ['project', 'env', 'status', 'limit'] as const) if (values[k]) q.set(k === 'env' ? 'environment' : k, values[k]!);
      const list = await api.get(`/api/runs?${q}`, z.array(C.Run));
      print(list, () => table(list.map((r) => ({ ...r, where: `${r.project}/${r.environment}` })), ['id', 'kind', 'where', 'status', 'attempts', 'queuedAt', 'error']));
      return EXIT.ok;
    }
    case 'run show': {
      const run = await api.get(`/api/runs/${runId(2)}`, C.Run);
      print(run, () => JSON.stringify(run, null, 2));
      return EXIT.ok;
    }
    case 'run wait':
      return finishWait(api, runId(2), values);
    case 'run logs': {
      const id = runId(2);
      const after = num(values.after, '--after') ?? 0;
      const out = (l: C.LogLine) => console.log(values.json ? JSON.stringify(l) : `${l.ts} ${l.stream === 'stdout' ? '' : `[${l.stream}] `}${l.line}`);
      if (values.follow) {
        const status = await followLogs(api, id, after, out);
        return status === 'succeeded' ? EXIT.ok : EXIT.runFailed;
      }
      let cursor = after;
      for (;;) {
        const page = await api.get(`/api/runs/${id}/logs?after=${cursor}&limit=5000`, C.LogPage);
        page.lines.forEach(out);
        if (page.lines.length < 5000) return EXIT.ok;
        cursor = page.nextAfter;
      }
    }
    case 'run cancel': {
      const { data: run } = await api.request('POST', `/api/runs/${runId(2)}/cancel`, C.Run);
      print(run, () => (run.status === 'cancelled' ? `cancelled run ${run.id}` : `asked run ${run.id} to stop; it is cancelled at its worker's next heartbeat`));
      return EXIT.ok;
    }
    case 'run retry': {
      const { data: run } = await api.request('POST', `/api/runs/${runId(2)}/retry`, C.Run);
      if (!values.wait && !values.follow) {
        print(run, () => `queued again: ${runLine(run)}`);
        return EXIT.ok;
      }
      if (!values.json) console.error(`queued run ${run.id} again`);
      return finishWait(api, run.id, values);
    }
    case 'approval list': {
      const list = await api.get(`/api/projects/${P(2)}/approvals`, z.array(C.Approval));
      print(list, () => table(list, ['id', 'environment', 'kind', 'status', 'requestedBy', 'decidedBy', 'usedByRunId']));
      return EXIT.ok;
    }
    case 'approval request': {
      const { data } = await api.request('POST', `/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}/approvals`, C.Approval, {
        kind: arg(pos, 4, 'KIND'), params: checkedParams(arg(pos, 4, 'KIND'), values), ...(values.reason ? { reason: values.reason } : {}),
      });
      print(data, () => `approval ${data.id} requested; another admin approves it with \`odooops approval approve ${data.id}\``);
      return EXIT.ok;
    }
    case 'approval approve':
    case 'approval reject': {
      const { data } = await api.request('POST', `/api/approvals/${enc(arg(pos, 2, 'APPROVAL_ID'))}/${sub}`, C.Approval);
      print(data, () => `approval ${data.id} ${data.status}`);
      return EXIT.ok;
    }
    case 'backup list': {
      const list = await api.get(`/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}/backups`, z.array(C.Backup));
      print(list, () => table(list.map((b) => ({ ...b, size: mib(b.sizeBytes), odoo: b.odooVersion })), ['id', 'kind', 'createdAt', 'size', 'odoo', 'masked']));
      return EXIT.ok;
    }
    case 'backup download': {
      const id = arg(pos, 2, 'BACKUP_ID');
      if (!C.Uuid.safeParse(id).success) throw usage(`${id} is not a backup id (see \`odooops backup list PROJECT ENV\`)`);
      const saved = await api.download(`/api/backups/${id}/download`, values.output, (bytes) => {
        if (!values.json && process.stderr.isTTY) process.stderr.write(`\rdownloading: ${mib(bytes)}`);
      });
      if (!values.json && process.stderr.isTTY) process.stderr.write('\n');
      print(saved, () => `saved ${saved.file} (${mib(saved.bytes)}): import it with Odoo's database manager (/web/database/manager → Restore) or on Odoo.sh`);
      return EXIT.ok;
    }
    case 'dev pull': {
      const { devPull } = await import('./dev-pull.ts');
      const say = (l: string) => (values.json ? process.stderr : process.stdout).write(`${l}\n`);
      const r = await devPull({
        api, project: arg(pos, 2, 'PROJECT'), from: values.from ?? 'production', database: values.db ?? 'odoo', filestore: values.filestore,
        baseUrl: values['base-url'], ifMissing: values['if-missing'], queueCloneInto: values['queue-clone'], odooVersion: values['odoo-version'], say,
      });
      if (values.json) console.log(JSON.stringify(r));
      return EXIT.ok;
    }
    case 'backup verify': {
      const id = arg(pos, 2, 'BACKUP_ID');
      if (!C.Uuid.safeParse(id).success) throw usage(`${id} is not a backup id (see \`odooops backup list PROJECT ENV\`)`);
      const { data: run } = await api.request('POST', `/api/backups/${id}/verify`, C.Run);
      if (!values.json) console.error(`queued run ${run.id}: verify of backup ${id} on ${run.project}/${run.environment}`);
      return finishWait(api, run.id, { ...values, follow: true });
    }
    case 'project alerts': {
      const path = `/api/projects/${P(2)}/alert-settings`;
      const channels = values.channel ?? [];
      const emails = values.email ?? [];
      if (values.none && (channels.length || emails.length)) throw usage('give --channel/--email or --none, not both');
      let data: C.AlertSettings;
      if (values.none || channels.length || emails.length) {
        ({ data } = await api.request('PUT', path, C.AlertSettings, { channels, emails } satisfies C.UpdateAlertSettings));
      } else {
        data = await api.get(path, C.AlertSettings);
      }
      print(data, () => [
        `alerts of ${pos[2]} go to: ${data.channels.length ? data.channels.join(', ') : 'no channel (listed with odooops alerts and shown in VS Code only)'}`,
        ...(data.emails.length ? [`mailed to: ${data.emails.join(', ')}`] : []),
        `channels the registry binds to ${pos[2]}: ${data.available.length ? data.available.map((a) => `${a.name} (${a.kind})`).join(', ') : 'none (the operator declares them: alertChannels in the registry)'}`,
      ].join('\n'));
      return EXIT.ok;
    }
    case 'alerts': {
      const list = await api.get(`/api/projects/${P(1)}/alerts?limit=${num(values.limit, '--limit') ?? 50}`, z.array(C.Alert));
      const delivered = (a: C.Alert) => a.deliveredAt === null ? 'pending' : a.deliveries.map((d) => `${d.channel}:${d.ok ? 'ok' : `failed (${d.error})`}`).join(' ') || '-';
      print(list, () => list.length === 0 ? '(no alerts)' : list.map((a) => `${a.createdAt}  ${a.kind}${a.environment ? ` ${a.environment}` : ''}${a.runId ? ` run ${a.runId}` : ''}\n  ${a.message}\n  delivered: ${delivered(a)}`).join('\n'));
      return EXIT.ok;
    }
    case 'audit': {
      const list = await api.get(`/api/projects/${P(1)}/audit?limit=${num(values.limit, '--limit') ?? 100}`, z.array(C.AuditEntry));
      print(list, () => table(list, ['id', 'at', 'actor', 'action', 'target']));
      return EXIT.ok;
    }
    case 'env shell': {
      if (values.psql && values.odoo) throw usage('give --psql or --odoo, not both');
      const { shellCommand } = await import('./shell.ts');
      return shellCommand({
        api, project: arg(pos, 2, 'PROJECT'), environment: arg(pos, 3, 'ENV'), kind: values.psql ? 'psql' : values.odoo ? 'odoo' : 'shell',
        yesProduction: values['yes-production'] === true,
      });
    }
    case 'env shell-log': {
      const list = await api.get(`/api/projects/${P(2)}/shell-sessions?limit=${num(values.limit, '--limit') ?? 50}`, z.array(C.ShellSession));
      print(list, () => list.length === 0 ? '(no shell sessions)' : list.map((x) => [
        `${x.openedAt}  #${x.id} ${x.kind} on ${x.environment} (${x.stage}) by ${x.userId} from ${x.clientAddress ?? '?'}`,
        `  ${x.closedAt ? `ended ${x.closedAt}: ${x.endReason ?? ''}${x.exitCode === null ? '' : ` (exit ${x.exitCode})`}` : 'open'}`,
        ...(x.input !== null ? [`  typed${x.inputTruncated ? ' (first 1 MiB)' : ''}: ${JSON.stringify(x.input)}`] : []),
      ].join('\n')).join('\n'));
      return EXIT.ok;
    }
  }
  throw usage(`unknown command: ${pos.slice(0, 2).join(' ')}`);
}

async function finishWait(api: ApiClient, id: number, values: Values): Promise<number> {
  let run: C.Run;
  if (values.follow && !values.json) {
    await followLogs(api, id, 0, (l) => console.log(`${l.stream === 'stdout' ? '' : `[${l.stream}] `}${l.line}`));
    run = await api.get(`/api/runs/${id}`, C.Run);
  } else {
    run = await waitFor(api, id, num(values.timeout, '--timeout'));
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
  if (values.json) console.log(JSON.stringify(run, null, 2));
  else {
    // A build's tests, failed ones by file and line (kept on a failed build too).
    const build = run.kind === 'build' ? C.BuildResult.safeParse(run.result) : null;
    if (build?.success) {
      const t = build.data.tests;
      for (const f of t.failures) console.error(`${f.outcome === 'failed' ? 'FAIL' : 'ERROR'} ${f.test.split(' ')[0]} (${f.module ?? '?'})${f.file ? ` ${f.file}${f.line ? `:${f.line}` : ''}` : ''}: ${f.message}`);
      console.error(`tests: ${summaryLine(t)} (Odoo ${build.data.odooVersion ?? '?'}, ${build.data.seconds} s)`);
    }
    console.error(runLine(run));
  }
  return run.status === 'succeeded' ? EXIT.ok : EXIT.runFailed;
}

function onOff(v: string, flag: string): boolean {
  if (v === 'true' || v === 'on' || v === 'yes') return true;
  if (v === 'false' || v === 'off' || v === 'no') return false;
  throw usage(`${flag} takes true or false`);
}

/** Runs the CLI and sets the process exit code; errors become one clear message and a hint. */
export async function runCli(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`odooops: ${err.message}`);
      if (err.hint) console.error(err.hint);
      process.exitCode = err.exitCode;
    } else {
      console.error(`odooops: ${(err as Error)?.stack ?? err}`);
      process.exitCode = EXIT.server;
    }
  }
  // The command is done (a server has shut down by now): exit once stdout and stderr are flushed,
  // rather than wait for timers libraries leave behind (supabase-js keeps one ~10 s after a follow).
  await new Promise((r) => process.stdout.write('', r));
  await new Promise((r) => process.stderr.write('', r));
  process.exit();
}

if (import.meta.main) await runCli(process.argv.slice(2));
