// The project's addons repository on the worker: one checkout per environment, fetched and checked out
// with git's own commands (argument arrays: a branch or revision from a webhook never meets a shell), as
// the run user, over only the transport the registry allowed for the repository (no ext::, no local
// paths unless the operator allowed one), with no system or user git configuration of the worker's.
// What Odoo.sh updates on a push: the modules whose __manifest__.py version changed (new modules are
// installed); a requirements.txt change also calls for the pre-deploy backup.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import type { RepositoryAccess } from '../infra/registry.ts';
import { execAs, runFs, toolEnv } from '../infra/run-user.ts';

/** git's environment for a fetch: the allowed transports only, no prompts, no configuration but ours. */
export function gitEnv(access: RepositoryAccess | null, globalConfig = '/dev/null'): NodeJS.ProcessEnv {
  return toolEnv({
    GIT_TERMINAL_PROMPT: '0',
    // Every transport but these is refused (git's protocol.allow=never plus protocol.<name>.allow=always),
    // for the clone, its redirects and any submodule alike. Local commands need none.
    GIT_ALLOW_PROTOCOL: access ? access.protocols.join(':') : 'none',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: globalConfig,
    GIT_ASKPASS: undefined,
    SSH_ASKPASS: undefined,
  });
}

export async function git(dir: string | null, args: string[], signal?: AbortSignal, access: RepositoryAccess | null = null, globalConfig?: string): Promise<string> {
  try {
    const { stdout } = await execAs('git', dir ? ['-C', dir, ...args] : args, { signal, env: gitEnv(access, globalConfig) });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`git ${args[0]} failed: ${(e.stderr || e.message).trim().split('\n').slice(-2).join(' / ')}`);
  }
}

/** The environment's checkout, with every branch of the repository fetched; returns the directory. */
export async function fetchRepository(repoUrl: string, access: RepositoryAccess, dir: string, signal?: AbortSignal): Promise<string> {
  await runFs.mkdir(dirname(dir));
  // A repository on this machine the operator allowed belongs to someone else than the run user: git
  // reads it only when it is named safe, which only a global configuration may say. Ours names it alone.
  let config: string | undefined;
  if (access.protocols.includes('file')) {
    config = join(dirname(dir), `.gitconfig-${basename(dir)}`);
    const path = repoUrl.replace(/^file:\/\//, '').replace(/\/+$/, '');
    // Quoted as git-config values are, so no character of the path can end the value or start a comment.
    await writeFile(config, `[safe]\n\tdirectory = "${path.replace(/[\\"]/g, (c) => `\\${c}`)}"\n`);
  }
  if (!existsSync(join(dir, '.git'))) {
    await git(null, ['clone', '--quiet', '--no-checkout', '--', repoUrl, dir], signal, access, config);
  } else {
    // The project's repository may have changed since this checkout was made: fetch from the allowed one.
    await git(dir, ['remote', 'set-url', 'origin', repoUrl], signal);
  }
  // Submodules are fetched by submodules.ts, each checked against the registry first; never by git on its own.
  await git(dir, ['fetch', '--quiet', '--force', '--prune', '--no-recurse-submodules', 'origin', '+refs/heads/*:refs/remotes/origin/*'], signal, access, config);
  return dir;
}

export async function hasCommit(dir: string, revision: string): Promise<boolean> {
  return git(dir, ['cat-file', '-e', `${revision}^{commit}`]).then(() => true, () => false);
}

/** The fetched head of a branch (BranchName keeps it from reading as an option). */
export async function branchHead(dir: string, branch: string): Promise<string> {
  return (await git(dir, ['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}^{commit}`])).trim();
}

const VERSION = /['"]version['"]\s*:\s*['"]([^'"]+)['"]/;

/** module name → manifest version at a revision (read with git show, never executed). */
async function manifests(dir: string, revision: string): Promise<Map<string, string>> {
  const files = (await git(dir, ['ls-tree', '-r', '--name-only', revision])).split('\n').filter((f) => f.endsWith('/__manifest__.py'));
  const out = new Map<string, string>();
  for (const f of files) {
    const text = await git(dir, ['show', `${revision}:${f}`]);
    out.set(posix.basename(posix.dirname(f)), VERSION.exec(text)?.[1] ?? '');
  }
  return out;
}

export interface ModuleChanges {
  update: string[];
  install: string[];
  requirementsChanged: boolean;
}

/**
 * What a deploy from `previous` (null: the first deploy) to `revision` has to do to the database. With
 * the repository's URL, submodules (fetched before: fetchSubmodules) count too: their modules are
 * updated when their version changed (installed only as dependencies: never by name), and their
 * requirements.txt files are requirements.
 */
export async function moduleChanges(dir: string, previous: string | null, revision: string, repoUrl?: string): Promise<ModuleChanges> {
  if (repoUrl) return moduleChangesWithSubmodules(dir, previous, revision, repoUrl);
  const now = await manifests(dir, revision);
  const before = previous ? await manifests(dir, previous) : new Map<string, string>();
  const update: string[] = [];
  const install: string[] = [];
  for (const [name, version] of now) {
    if (!before.has(name)) install.push(name);
    else if (before.get(name) !== version) update.push(name);
  }
  const requirementsChanged = previous
    ? (await git(dir, ['diff', '--name-only', previous, revision])).split('\n').some((f) => f === 'requirements.txt' || f.endsWith('/requirements.txt'))
    : false;
  return { update: update.sort(), install: install.sort(), requirementsChanged };
}

async function moduleChangesWithSubmodules(dir: string, previous: string | null, revision: string, repoUrl: string): Promise<ModuleChanges> {
  const { repositoryContents } = await import('./submodules.ts');
  const now = await repositoryContents(dir, revision, repoUrl);
  const before = previous ? await repositoryContents(dir, previous, repoUrl) : { modules: [], requirements: [] };
  const was = new Map(before.modules.map((m) => [m.name, m.version]));
  const update: string[] = [];
  const install: string[] = [];
  for (const m of now.modules) {
    if (!was.has(m.name)) {
      if (m.own) install.push(m.name);
    } else if (was.get(m.name) !== m.version) update.push(m.name);
  }
  const reqs = (l: { path: string; blob: string }[]) => JSON.stringify(l.map((r) => `${r.path}:${r.blob}`).sort());
  const requirementsChanged = previous ? reqs(now.requirements) !== reqs(before.requirements) : false;
  return { update: [...new Set(update)].sort(), install: [...new Set(install)].sort(), requirementsChanged };
}
