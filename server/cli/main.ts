#!/usr/bin/env node
// The odooops command: the server, and a client of its API for people and CI pipelines.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import * as C from '../../contract/index.ts';
import { ApiClient, CliError, EXIT, resolveTarget } from './api-client.ts';
import { followLogs } from './follow.ts';
import { mib } from '../odoo/inspect.ts';

const USAGE = `odooops — run self-hosted Odoo like Odoo.sh

Server
  odooops server [--database-url URL] [--port N] [--host H] [--demo] [--executors MODULE]...
                 [--jwt-secret S | --jwks-url URL] [--realtime-url URL --realtime-key KEY]
                 [--concurrency N] [--lease SECONDS] [--grace SECONDS]
                 [--secrets-dir DIR]... [--backup-dir DIR] [--work-dir DIR] [--no-worker]
                 [--github-webhook-secret S] [--github-api-url URL]
      Starts the control plane: the embedded PostgreSQL under ~/.odooops (or --database-url, a Supabase
      project included), migrations, the HTTP API and a worker. Writes ~/.odooops/connection.json.
      On SIGTERM/SIGINT, running runs get --grace seconds (default 20) to finish, then go back to the queue.
      Environment passwords are referenced, never stored: env:ODOOOPS_DB_<NAME> on the worker, or
      file:<path> inside ~/.odooops/secrets or a --secrets-dir. With a Supabase control plane, pass its
      URL and anon key as --realtime-url/--realtime-key (or SUPABASE_URL/SUPABASE_ANON_KEY): viewers then
      follow logs over Supabase Realtime instead of this server's own gateway.
      GitHub: POST /api/webhooks/github takes push, pull_request and delete events signed with
      --github-webhook-secret (or ODOOOPS_GITHUB_WEBHOOK_SECRET); commit statuses, deployments and pull
      request comments use the token in ODOOOPS_GITHUB_TOKEN (or GITHUB_TOKEN), read from here only.
      Built-in run kinds: health, backup {kind: manual|daily|pre-deploy}, restore {backup}, clone {from?, backup?,
      filestore?: assets|placeholders|all|none, profile? (JSON or YAML)}, retention. Daily backups of production and retention are scheduled.
  odooops worker --database-url URL [--executors MODULE]... [--concurrency N] [--lease SECONDS] [--backup-dir DIR]
      Only a worker, to add capacity on another machine sharing the same queue.
      Backups go to --backup-dir (default ~/.odooops/backups); workers that share backups share that directory.
  odooops token [--user UUID] [--email E] [--ttl 30d]
      Prints a token signed with this machine's local secret (for a teammate or a CI pipeline).

Projects, members, environments
  odooops project list | create SLUG [--name NAME] | delete SLUG
  odooops member list PROJECT | add PROJECT USER_ID --role viewer|developer|tester|admin [--name NAME]
                 | set-role PROJECT USER_ID ROLE | remove PROJECT USER_ID
  odooops env list PROJECT | show PROJECT ENV | delete PROJECT ENV
  odooops project git PROJECT [--repo-url URL] [--github-repo OWNER/NAME] [--production-branch B]
                 [--staging-branch B]... [--staging-mode update|fresh] [--no-production-approval]
                 [--dev-url-template 'https://{env}.dev.example.com']
      Pushes to the production branch deploy production (after an approval unless --no-production-approval),
      to a staging branch its staging environment (fresh: cloned from production first), to any other
      branch a development environment created on the first push and destroyed with the branch.
  odooops project masking PROJECT [--set FILE | --reset]
      The masking profile every clone of the project uses (JSON or YAML, see contract MaskProfile),
      printed as YAML to edit and --set again; admins set it (audited), --reset goes back to the
      default. A clone's own --param profile=… can only make it stricter. No profile lets production
      password hashes, TOTP secrets or API keys into a clone: its admin gets a fresh password instead.
  odooops env deploy-target PROJECT ENV --odoo-bin PATH --http-port N     Odoo on the worker's machine
  odooops env deploy-target PROJECT ENV --target JSON     e.g. Odoo on a droplet with docker compose:
      '{"kind":"ssh","host":"deploy@erp.example.com","checkoutDir":"/srv/odoo/addons","addonsPath":"/mnt/extra-addons",
        "odooBin":"docker","odooArgs":["compose","-f","/srv/odoo/compose.yml","exec","-T","odoo","odoo","-c","/etc/odoo/odoo.conf"],
        "restart":["docker","compose","-f","/srv/odoo/compose.yml","restart","odoo"],"healthUrl":"https://erp.example.com/web/health"}'
  odooops env create PROJECT ENV --stage production|staging|development --db NAME [--db-host H]
                 [--db-port N] [--db-user U] [--db-password-ref env:ODOOOPS_DB_X|file:/path] [--filestore DIR]
                 [--branch B] [--url URL]

Runs
  odooops run queue PROJECT ENV KIND [--param KEY=VALUE]... [--params JSON] [--idempotency-key K]
                 [--approval ID] [--max-attempts N] [--wait] [--follow]
  odooops run list [--project P] [--env E] [--status S] [--limit N]
  odooops run show RUN_ID
  odooops run wait RUN_ID [--timeout SECONDS]      exit 0 when it succeeded, 1 when it failed or was cancelled
  odooops run logs RUN_ID [--follow] [--after SEQ]
  odooops run cancel RUN_ID
  odooops approval list PROJECT | request PROJECT ENV KIND [--params JSON] [--reason TEXT]
                 | approve APPROVAL_ID | reject APPROVAL_ID
  odooops backup list PROJECT ENV
  odooops backup download BACKUP_ID [--output FILE]   Odoo's database-manager zip (dump.sql, filestore/),
                 for Odoo's own database manager or Odoo.sh; FILE defaults to <database>-<date>.zip
  odooops audit PROJECT [--limit N]

Development databases
  odooops dev pull PROJECT [--from ENV] [--db NAME] [--filestore DIR] [--base-url URL] [--if-missing]
                 [--queue-clone ENV] [--odoo-version 16.0|17.0|18.0]
      Restores the newest masked clone of ENV (default production) into the local PostgreSQL (libpq's
      PGHOST/PGPORT/PGUSER; the local socket by default) as NAME (default odoo), its filestore into DIR
      (default ~/.local/share/Odoo/filestore/NAME), checksums verified, and points web.base.url at this
      machine (a Codespace's forwarded port 8069, or http://localhost:8069). Only masked clones are ever
      served. --if-missing keeps an existing NAME; --queue-clone queues a clone into ENV when there is none.
  odooops whoami

Common options: --json (machine-readable output), --url URL and --token T (or ODOOOPS_URL and
ODOOOPS_TOKEN; by default the local server found in ~/.odooops), --home DIR (or ODOOOPS_HOME).
Exit codes: 0 ok, 1 run failed or cancelled, 2 usage, 3 refused by the server, 4 server unreachable, 5 server error.`;

const OPTIONS = {
  json: { type: 'boolean' }, url: { type: 'string' }, token: { type: 'string' }, home: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  'database-url': { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, demo: { type: 'boolean' },
  executors: { type: 'string', multiple: true }, 'jwt-secret': { type: 'string' }, 'jwks-url': { type: 'string' },
  'realtime-url': { type: 'string' }, 'realtime-key': { type: 'string' },
  'secrets-dir': { type: 'string', multiple: true }, 'backup-dir': { type: 'string' }, concurrency: { type: 'string' }, lease: { type: 'string' }, grace: { type: 'string' }, 'no-worker': { type: 'boolean' }, fast: { type: 'boolean' },
  user: { type: 'string' }, email: { type: 'string' }, ttl: { type: 'string' },
  name: { type: 'string' }, role: { type: 'string' }, stage: { type: 'string' }, db: { type: 'string' },
  'db-host': { type: 'string' }, 'db-port': { type: 'string' }, 'db-user': { type: 'string' },
  'db-password-ref': { type: 'string' }, filestore: { type: 'string' }, branch: { type: 'string' },
  param: { type: 'string', multiple: true }, params: { type: 'string' }, 'idempotency-key': { type: 'string' },
  output: { type: 'string', short: 'o' }, from: { type: 'string' }, 'base-url': { type: 'string' }, 'if-missing': { type: 'boolean' },
  'queue-clone': { type: 'string' }, 'github-webhook-secret': { type: 'string' }, 'github-api-url': { type: 'string' }, 'work-dir': { type: 'string' },
  'repo-url': { type: 'string' }, 'github-repo': { type: 'string' }, 'production-branch': { type: 'string' }, 'staging-branch': { type: 'string', multiple: true },
  'staging-mode': { type: 'string' }, 'no-production-approval': { type: 'boolean' }, 'dev-url-template': { type: 'string' },
  'odoo-bin': { type: 'string' }, 'http-port': { type: 'string' }, target: { type: 'string' }, 'odoo-version': { type: 'string' },
  approval: { type: 'string' }, 'max-attempts': { type: 'string' }, wait: { type: 'boolean' }, follow: { type: 'boolean' },
  project: { type: 'string' }, env: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' },
  timeout: { type: 'string' }, after: { type: 'string' }, reason: { type: 'string' },
  set: { type: 'string' }, reset: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const usage = (message: string) => new CliError(message, EXIT.usage, 'Run `odooops --help` for the commands.');
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

function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '-' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  if (values.help || !cmd || cmd === 'help') {
    console.log(USAGE);
    return cmd || values.help ? EXIT.ok : EXIT.usage;
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
      worker: !values['no-worker'], fast: values.fast, secretsDirs: values['secrets-dir'], backupDir: values['backup-dir'],
      githubWebhookSecret: values['github-webhook-secret'] ?? process.env.ODOOOPS_GITHUB_WEBHOOK_SECRET,
      githubToken: process.env.ODOOOPS_GITHUB_TOKEN ?? process.env.GITHUB_TOKEN, githubApiUrl: values['github-api-url'],
      workDir: values['work-dir'],
    }, (num(values.grace, '--grace') ?? 20) * 1000);
  }
  if (cmd === 'token') {
    const { localIdentity, signToken } = await import('../auth/tokens.ts');
    const { odooopsHome } = await import('../paths.ts');
    const id = localIdentity(odooopsHome(values.home));
    const sub = values.user ? C.Uuid.safeParse(values.user) : { success: true as const, data: id.userId };
    if (!sub.success) throw usage('--user must be a user id (UUID)');
    console.log(await signToken(id.secret, { sub: sub.data, email: values.email }, values.ttl ?? '30d'));
    return EXIT.ok;
  }

  const api = new ApiClient(resolveTarget({ url: values.url, token: values.token, home: values.home }));
  const P = (i: number) => enc(arg(pos, i, 'PROJECT'));
  const runId = (i: number) => {
    const id = Number(arg(pos, i, 'RUN_ID'));
    if (!Number.isInteger(id) || id <= 0) throw usage(`RUN_ID must be a positive number, not "${pos[i]}"`);
    return id;
  };

  switch (`${cmd} ${sub ?? ''}`.trim()) {
    case 'whoami': {
      const me = await api.get('/api/me', C.Me);
      print(me, () => `${me.userId}${me.email ? ` (${me.email})` : ''} at ${api.target.url}`);
      return EXIT.ok;
    }
    case 'project list': {
      const list = await api.get('/api/projects', z.array(C.Project));
      print(list, () => table(list, ['slug', 'name', 'role']));
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
    case 'member list': {
      const list = await api.get(`/api/projects/${P(2)}/members`, z.array(C.Member));
      print(list, () => table(list, ['userId', 'role', 'displayName']));
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
      };
      const { data } = await api.request('PUT', `/api/projects/${P(2)}/git`, C.ProjectGitSettings, body);
      print(data, () => JSON.stringify(data, null, 2));
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
    case 'env deploy-target': {
      let target: unknown;
      if (values.target) {
        try {
          target = JSON.parse(values.target);
        } catch (err) {
          throw usage(`--target is not JSON: ${(err as Error).message}`);
        }
      } else {
        const port = num(values['http-port'], '--http-port');
        if (!values['odoo-bin'] || !port) throw usage('--odoo-bin PATH and --http-port N (Odoo on the worker), or --target JSON, are required');
        target = { kind: 'local', odooBin: values['odoo-bin'], httpPort: port };
      }
      const { data } = await api.request('PUT', `/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}/deploy-target`, C.DeployTarget, target);
      print(data, () => `${pos[3]} deploys with ${data.odooBin}${data.kind === 'local' ? ` on port ${data.httpPort}` : ` on ${data.host}`}`);
      return EXIT.ok;
    }
    case 'env create': {
      if (!values.stage) throw usage('--stage is required (production, staging or development)');
      if (!values.db) throw usage('--db (the Odoo database name) is required');
      const body = {
        name: arg(pos, 3, 'ENV'), stage: values.stage,
        ...(values.branch ? { branch: values.branch } : {}), ...(values.url ? { url: values.url } : {}),
        ...(values.filestore ? { filestorePath: values.filestore } : {}),
        database: {
          name: values.db, ...(values['db-host'] ? { host: values['db-host'] } : {}),
          ...(values['db-port'] ? { port: num(values['db-port'], '--db-port') } : {}),
          ...(values['db-user'] ? { user: values['db-user'] } : {}),
          ...(values['db-password-ref'] ? { passwordRef: values['db-password-ref'] } : {}),
        },
      };
      const { data } = await api.request('POST', `/api/projects/${P(2)}/environments`, C.Environment, body);
      print(data, () => `created ${data.stage} environment ${data.project}/${data.name} on database ${data.database.name}`);
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
        kind, params: parseParams(values),
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
    case 'approval list': {
      const list = await api.get(`/api/projects/${P(2)}/approvals`, z.array(C.Approval));
      print(list, () => table(list, ['id', 'environment', 'kind', 'status', 'requestedBy', 'decidedBy', 'usedByRunId']));
      return EXIT.ok;
    }
    case 'approval request': {
      const { data } = await api.request('POST', `/api/projects/${P(2)}/environments/${enc(arg(pos, 3, 'ENV'))}/approvals`, C.Approval, {
        kind: arg(pos, 4, 'KIND'), params: parseParams(values), ...(values.reason ? { reason: values.reason } : {}),
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
    case 'audit': {
      const list = await api.get(`/api/projects/${P(1)}/audit?limit=${num(values.limit, '--limit') ?? 100}`, z.array(C.AuditEntry));
      print(list, () => table(list, ['id', 'at', 'actor', 'action', 'target']));
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
  else console.error(runLine(run));
  return run.status === 'succeeded' ? EXIT.ok : EXIT.runFailed;
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
