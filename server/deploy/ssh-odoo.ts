// Odoo on another host (an "ssh" runtime of the registry, with its fixed command lines): each step is one
// `ssh host -- <command>` with the system's ssh client, run as the run user (BatchMode, the worker's own
// known_hosts file). ssh hands the remote shell a single string, so every argument is single-quoted: a
// branch, revision or path is data there, never shell syntax.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RepositoryAccess, SshRuntime } from '../infra/registry.ts';
import { giveToRunUser, spawnAs } from '../infra/run-user.ts';
import type { EnvironmentRow } from '../rows.ts';
import type { OdooHost } from './host.ts';

type Ssh = SshRuntime;

/** One argument for a POSIX shell: unchanged when plainly safe, else single-quoted. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_/.,:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** ssh's arguments for running argv on the runtime's host (every argument quoted for the remote shell). */
export function sshArgs(t: Ssh, knownHosts: string, argv: string[]): string[] {
  return ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'ConnectTimeout=15',
    ...(t.port ? ['-p', String(t.port)] : []), ...(t.identityFile ? ['-i', t.identityFile, '-o', 'IdentitiesOnly=yes'] : []), t.host, '--', argv.map(shellQuote).join(' ')];
}

/** The worker's known_hosts file for ssh runtimes (accept-new: the first key seen is kept). */
export function knownHostsFile(workDir: string): string {
  const dir = join(workDir, 'ssh');
  mkdirSync(dir, { recursive: true });
  giveToRunUser(dir);
  return join(dir, 'known_hosts');
}

export class SshOdoo implements OdooHost {
  private readonly target: Ssh;
  private readonly env: EnvironmentRow;
  private readonly repoUrl: string;
  private readonly access: RepositoryAccess;
  private readonly knownHosts: string;
  constructor(workDir: string, env: EnvironmentRow, target: Ssh, repoUrl: string, access: RepositoryAccess) {
    this.target = target;
    this.env = env;
    this.repoUrl = repoUrl;
    this.access = access;
    this.knownHosts = knownHostsFile(workDir);
  }

  get description(): string {
    return `the runtime ${this.env.runtime}: ${this.target.odooBin} on ${this.target.host} over ssh`;
  }

  /** Runs argv on the host; output lines go to `out`; fails with the last lines of stderr. */
  run(argv: string[], out?: (line: string) => Promise<void>, signal?: AbortSignal): Promise<void> {
    const t = this.target;
    const args = sshArgs(t, this.knownHosts, argv);
    return new Promise((resolve, reject) => {
      const child = spawnAs('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
      let tail = '';
      const pump = (stream: NodeJS.ReadableStream, keep: boolean) => {
        let rest = '';
        let chain = Promise.resolve();
        stream.on('data', (d: Buffer) => {
          const parts = (rest + d.toString()).split('\n');
          rest = parts.pop()!;
          if (keep) tail = (tail + parts.join('\n') + '\n').slice(-4000);
          if (out) for (const l of parts) chain = chain.then(() => out(l));
        });
        return new Promise<void>((r) => stream.on('end', () => {
          if (rest && keep) tail += rest;
          if (rest && out) chain = chain.then(() => out(rest));
          void chain.then(() => r());
        }));
      };
      const done = Promise.all([pump(child.stdout!, false), pump(child.stderr!, true)]);
      child.once('error', (err) => reject(new Error(`ssh could not run: ${err.message}`)));
      child.once('close', (code) => void done.then(() => (code === 0 ? resolve()
        : reject(new Error(`${argv[0]} on ${t.host} failed (exit ${code}): ${tail.trim().split('\n').slice(-3).join(' / ') || 'no message'}`)))));
    });
  }

  async checkout(revision: string, signal?: AbortSignal): Promise<void> {
    const dir = this.target.checkoutDir;
    // Positional parameters, not interpolation: the directory and URL stay data in the remote shell. Only
    // the transport the registry allowed for the repository, there too.
    const allow = ['-c', 'protocol.allow=never', ...this.access.protocols.flatMap((p) => ['-c', `protocol.${p}.allow=always`])];
    await this.run(['sh', '-c', 'd=$1 u=$2; shift 2; test -d "$d/.git" || git "$@" clone --quiet --no-checkout -- "$u" "$d"', 'sh', dir, this.repoUrl, ...allow], undefined, signal);
    await this.run(['git', ...allow, '-C', dir, 'fetch', '--quiet', '--force', 'origin', '+refs/heads/*:refs/remotes/origin/*'], undefined, signal);
    await this.run(['git', '-C', dir, 'checkout', '--quiet', '--force', '--detach', revision], undefined, signal);
  }

  async beforeUpdate(): Promise<boolean> {
    return false;
  }

  async update(modules: { update: string[]; install: string[] }, out: (line: string) => Promise<void>, signal: AbortSignal): Promise<void> {
    const t = this.target;
    const argv = [t.odooBin, ...t.odooArgs, '-d', this.env.db_name, '--addons-path', [t.addonsPath ?? t.checkoutDir, ...t.odooAddonsPath].join(','),
      ...(modules.update.length ? ['-u', modules.update.join(',')] : []), ...(modules.install.length ? ['-i', modules.install.join(',')] : []), '--stop-after-init', '--no-http'];
    await this.run(argv, out, signal).catch((err) => {
      throw new Error(`the module update failed on ${t.host}: ${(err as Error).message}`);
    });
  }

  async restart(): Promise<void> {
    await this.run(this.target.restart);
  }

  async healthy(timeoutMs = 30_000, signal?: AbortSignal): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < until) {
      signal?.throwIfAborted();
      try {
        const r = await fetch(this.target.healthUrl, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
        last = `HTTP ${r.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`Odoo did not answer ${this.target.healthUrl} with 200 within ${timeoutMs / 1000} s (last: ${last})`);
  }

  async stop(): Promise<boolean> {
    return false;
  }
}
