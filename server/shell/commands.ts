// What a shell session runs, decided here from the environment's row and the operator's registry, never
// from anything the client sent (it chose the kind, nothing else): bash in the environment's checkout, psql
// on its database, or its runtime's odoo-bin shell; for an ssh runtime, ssh -tt to the registry's host with
// a fixed command. The database password travels in PGPASSWORD, never on a command line.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ShellKind } from '../../contract/index.ts';
import { LocalOdoo } from '../deploy/local-odoo.ts';
import { shellQuote } from '../deploy/ssh-odoo.ts';
import { InfraError, type Infrastructure, type SshRuntime } from '../infra/registry.ts';
import { giveToRunUser, runUser, toolEnv } from '../infra/run-user.ts';
import type { EnvironmentRow } from '../rows.ts';

export interface ShellCommand {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** For the terminal's first line and the server log: what runs where. */
  where: string;
}

export const TERM = 'xterm-256color';

/**
 * The command for `kind` on `env` of project `slug`; throws InfraError (shown to the client) when the
 * registry does not allow it. `marker` (NAME=value) goes into the environment of what runs on this machine,
 * so that everything the session starts can be found and ended (process-tree.ts).
 */
export function shellCommand(kind: ShellKind, env: EnvironmentRow, slug: string, infra: Infrastructure, workDir: string, marker: string): ShellCommand {
  if (!env.runtime) {
    throw new InfraError(`${env.name} has no runtime: shells run where its Odoo runs; an admin sets one (odooops env deploy-target ${slug} ${env.name} --runtime NAME)`);
  }
  const runtime = infra.runtime(env.runtime, slug);
  if (!runtime.shells) {
    throw new InfraError(`the runtime ${env.runtime} does not allow shells; the operator allows them with "shells: true" on it in the registry (SECURITY.md, "Shells", says what that gives)`);
  }
  const db = infra.database(env.db_server, env.db_name, slug);
  const [markName, markValue] = marker.split('=') as [string, string];
  const pg = {
    PGHOST: db.host, PGPORT: db.port ? String(db.port) : undefined, PGUSER: db.user, PGDATABASE: env.db_name, PGPASSWORD: db.password,
  };
  const base: Record<string, string> = { TERM, [markName]: markValue };
  const home = runUser().home;
  const checkout = join(workDir, 'checkouts', env.id);
  const here = existsSync(checkout) ? checkout : existsSync(home) ? home : '/';
  // psql runs on this machine for either kind of runtime: the registry's database server is how this
  // worker reaches it, and the password stays in this process's environment.
  if (kind === 'psql') {
    return { file: 'psql', args: [], env: toolEnv({ ...base, ...pg }), cwd: here, where: `psql on ${env.db_name} (database server ${env.db_server})` };
  }
  if (runtime.kind === 'local') {
    if (kind === 'shell') {
      return { file: '/bin/bash', args: [], env: toolEnv({ ...base, ...pg }), cwd: here,
        where: `bash as ${runUser().name} in ${existsSync(checkout) ? `the checkout of ${env.name}` : `${here} (no checkout yet)`}` };
    }
    // Odoo refuses an addons path that is missing (the checkout a first deploy makes).
    if (!existsSync(checkout)) throw new InfraError(`${env.name} has no checkout on this worker yet: deploy it first (a push to its branch, or a deploy run), then open its Odoo shell`);
    const odoo = new LocalOdoo(workDir, { ...env, http_port: env.http_port ?? 0 }, runtime, { ...db }, infra.filestore(env.filestore_root, env.db_name, slug));
    const c = odoo.shellCommand();
    return { file: c.file, args: c.args, env: { ...c.env, ...base }, cwd: here, where: `odoo-bin shell of the runtime ${env.runtime} on ${env.db_name}` };
  }
  return sshCommand(kind, runtime, env, workDir, base);
}

/**
 * ssh -tt with one fixed command (each argument quoted for the remote shell). The remote side knows its
 * database from its own configuration (as the deploys' odoo-bin does): only the database's name is given.
 */
function sshCommand(kind: 'shell' | 'odoo', t: SshRuntime, env: EnvironmentRow, workDir: string, base: Record<string, string>): ShellCommand {
  const dir = join(workDir, 'ssh');
  mkdirSync(dir, { recursive: true });
  giveToRunUser(dir);
  const argv = kind === 'odoo'
    ? [t.odooBin, 'shell', ...t.odooArgs, '-d', env.db_name, '--addons-path', [t.addonsPath ?? t.checkoutDir, ...t.odooAddonsPath].join(',')]
    : ['sh', '-c', 'cd "$1" 2>/dev/null; PGDATABASE=$2; export PGDATABASE; exec "${SHELL:-/bin/sh}" -l', 'sh', t.checkoutDir, env.db_name];
  const args = ['-tt', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o', 'ConnectTimeout=15', '-o', 'ServerAliveInterval=30', ...(t.port ? ['-p', String(t.port)] : []),
    ...(t.identityFile ? ['-i', t.identityFile, '-o', 'IdentitiesOnly=yes'] : []), t.host, '--', argv.map(shellQuote).join(' ')];
  const home = runUser().home;
  return { file: 'ssh', args, env: toolEnv(base), cwd: existsSync(home) ? home : '/',
    where: kind === 'odoo' ? `odoo-bin shell of the runtime ${env.runtime} on ${t.host}` : `a login shell on ${t.host} in ${t.checkoutDir}` };
}
