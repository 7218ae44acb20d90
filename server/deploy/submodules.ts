// Git submodules of the project's repository (how agencies pull OCA repositories), fetched as Odoo.sh
// does, but only from where the operator allows: every submodule's URL (relative ones resolved against
// the repository that names them, as git does) must be a repository of the registry bound to the
// project, checked for every submodule of a level before any of them is fetched. OdooOps does not run
// `git submodule`: it fetches each submodule into a git directory of its own inside the checkout's .git
// (keyed by URL) and checks its commit out with git's plain commands, so nothing of .gitmodules but
// path and url is ever read (no update=!command, no branch, no fetchRecurseSubmodules), no hook exists
// and no transport but the registry's is used. Module discovery reads the same objects: the modules of
// submodules are found at a revision before anything is checked out.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { InfraError, gitProtocolOf, type RepositoryAccess } from '../infra/registry.ts';
import { runFs } from '../infra/run-user.ts';
import { git } from './git.ts';

/** The registry's answer for a URL: the access, or an InfraError (RunInfra.repository). */
export type AllowRepository = (url: string) => RepositoryAccess;

export interface SubmoduleRef {
  name: string;
  /** Where it sits, relative to the repository that names it. */
  path: string;
  /** Its URL as git uses it (a relative one resolved). */
  url: string;
  commit: string;
}

/** Where a submodule's objects are kept: inside the root checkout's .git, one directory per URL. */
export const submoduleGitDir = (root: string, url: string) =>
  join(root, '.git', 'odooops-modules', createHash('sha256').update(url).digest('hex').slice(0, 20));

/** A relative submodule URL (./x, ../x) against the URL of the repository that names it, as git resolves it. */
export function resolveSubmoduleUrl(parentUrl: string, url: string): string {
  if (!url.startsWith('./') && !url.startsWith('../')) return url;
  let base = parentUrl.replace(/\/+$/, '');
  let rest = url;
  for (;;) {
    if (rest.startsWith('./')) rest = rest.slice(2);
    else if (rest.startsWith('../')) {
      rest = rest.slice(3);
      const cut = Math.max(base.lastIndexOf('/'), base.lastIndexOf(':'));
      // Nothing left to go up from (or only a scheme's "//"): git refuses it too.
      if (cut <= 0 || /^[a-z][a-z0-9+.-]*:\/?$/i.test(base.slice(0, cut + 1))) {
        throw new InfraError(`the submodule URL ${url} goes above the repository ${parentUrl}`);
      }
      base = base[cut] === ':' ? base.slice(0, cut + 1) : base.slice(0, cut);
    } else break;
  }
  return base.endsWith(':') ? `${base}${rest}` : `${base}/${rest}`;
}

/** The gitlinks of a revision with their .gitmodules entries (read with git, never executed). */
export async function submodulesAt(gitDir: string, revision: string, parentUrl: string): Promise<SubmoduleRef[]> {
  const tree = await git(null, ['--git-dir', gitDir, 'ls-tree', '-r', '-z', '--full-tree', revision]);
  const links = tree.split('\0').filter(Boolean).flatMap((entry) => {
    const m = /^160000 commit ([0-9a-f]{40})\t(.+)$/s.exec(entry);
    return m ? [{ commit: m[1]!, path: m[2]! }] : [];
  });
  if (!links.length) return [];
  const hasModules = await git(null, ['--git-dir', gitDir, 'cat-file', '-e', `${revision}:.gitmodules`]).then(() => true, () => false);
  const entries = new Map<string, Record<string, string>>();
  if (hasModules) {
    const list = await git(null, ['--git-dir', gitDir, 'config', '--blob', `${revision}:.gitmodules`, '--null', '--list']);
    for (const item of list.split('\0').filter(Boolean)) {
      const nl = item.indexOf('\n');
      const key = nl < 0 ? item : item.slice(0, nl);
      const value = nl < 0 ? '' : item.slice(nl + 1);
      const m = /^submodule\.(.+)\.([a-z]+)$/i.exec(key);
      if (!m) continue;
      const e = entries.get(m[1]!) ?? {};
      e[m[2]!.toLowerCase()] = value;
      entries.set(m[1]!, e);
    }
  }
  return links.map(({ commit, path }) => {
    const found = [...entries].find(([, e]) => e.path === path);
    if (!found || !found[1].url) {
      throw new InfraError(`the repository has a submodule at ${path} that .gitmodules does not describe (no url); add it with git submodule add, or remove the gitlink`);
    }
    const [name, e] = found;
    // git does not copy a command from .gitmodules either; OdooOps reads no update mode at all: say so.
    if (e.update?.trim().startsWith('!')) {
      throw new InfraError(`the submodule "${name}" (${path}) asks for a custom update command (update = ${e.update}); OdooOps never runs commands from .gitmodules: remove the update line`);
    }
    const raw = e.url!;
    if (raw.startsWith('-')) throw new InfraError(`the submodule "${name}" (${path}) has the URL ${raw}, which git would read as an option; fix .gitmodules`);
    return { name, path, url: resolveSubmoduleUrl(parentUrl, raw), commit };
  });
}

/** The registry's access for a submodule, or an error that names it and what the operator adds. */
function allowed(s: SubmoduleRef, allow: AllowRepository, slug: string): RepositoryAccess {
  const protocol = gitProtocolOf(s.url);
  // Remote helpers run commands (ext::sh -c …): refused whatever a pattern in the registry matches.
  if (/^[a-z][a-z0-9+.-]*::/i.test(s.url) || ['ext', 'fd'].includes(protocol)) {
    throw new InfraError(`the submodule "${s.name}" (${s.path}) has the URL ${s.url}, a git remote helper that runs commands; OdooOps fetches submodules over https, ssh, git or file only`);
  }
  try {
    return allow(s.url);
  } catch (err) {
    throw new InfraError(`the submodule "${s.name}" (${s.path}) points at ${s.url}, which the registry does not allow for project ${slug}; ` +
      `nothing was fetched. The operator adds it to the registry's repositories (url: ${s.url}, or a pattern that matches it; projects: [${slug}]), ` +
      `or the submodule is removed from .gitmodules (${(err as Error).message})`);
  }
}

export interface SubmoduleFetch {
  allow: AllowRepository;
  slug: string;
  log(line: string): Promise<void>;
  signal?: AbortSignal;
}

/** A git global configuration naming local repositories safe (they belong to another user than the run user). */
async function safeConfig(root: string, urls: string[]): Promise<string | undefined> {
  const paths = urls.filter((u) => gitProtocolOf(u) === 'file').map((u) => u.replace(/^file:\/\//, '').replace(/\/+$/, ''));
  if (!paths.length) return undefined;
  const file = join(dirname(root), `.gitconfig-${posix.basename(root)}-submodules`);
  await writeFile(file, `[safe]\n${paths.map((p) => `\tdirectory = "${p.replace(/[\\"]/g, (c) => `\\${c}`)}"\n`).join('')}`);
  return file;
}

/**
 * Fetches the objects of every submodule (recursively) of `revision` of the checkout at `root`, whose
 * origin is `repoUrl`; returns how many. Each level's URLs are all checked before any is fetched.
 */
export async function fetchSubmodules(root: string, revision: string, repoUrl: string, o: SubmoduleFetch): Promise<number> {
  let level: { gitDir: string; revision: string; url: string; prefix: string }[] = [{ gitDir: join(root, '.git'), revision, url: repoUrl, prefix: '' }];
  let count = 0;
  const seen = new Set<string>();
  while (level.length) {
    const found: (SubmoduleRef & { at: string })[] = [];
    for (const l of level) {
      for (const s of await submodulesAt(l.gitDir, l.revision, l.url)) found.push({ ...s, at: posix.join(l.prefix, s.path) });
    }
    const checked = found.map((s) => ({ s, access: allowed(s, o.allow, o.slug) }));
    const config = await safeConfig(root, checked.map((c) => c.s.url));
    const next: typeof level = [];
    for (const { s, access } of checked) {
      const gitDir = submoduleGitDir(root, s.url);
      const key = `${gitDir}@${s.commit}`;
      if (!seen.has(key)) {
        seen.add(key);
        if (!existsSync(join(gitDir, 'HEAD'))) {
          await runFs.mkdir(dirname(gitDir));
          await git(null, ['init', '--quiet', '--bare', gitDir], o.signal);
        }
        const has = () => git(null, ['--git-dir', gitDir, 'cat-file', '-e', `${s.commit}^{commit}`]).then(() => true, () => false);
        if (!(await has())) {
          await o.log(`submodule ${s.at}: fetching ${s.url} (${s.commit.slice(0, 7)})`);
          await git(null, ['--git-dir', gitDir, 'fetch', '--quiet', '--force', '--no-recurse-submodules', '--', s.url, '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*'], o.signal, access, config);
          // A commit on no branch (a fork's, a detached one) is asked for by its id.
          if (!(await has())) await git(null, ['--git-dir', gitDir, 'fetch', '--quiet', '--no-recurse-submodules', '--', s.url, s.commit], o.signal, access, config).catch(() => {});
          if (!(await has())) throw new Error(`the submodule ${s.at} is at ${s.commit.slice(0, 7)}, which ${s.url} does not have; push that commit to it`);
        } else await o.log(`submodule ${s.at}: ${s.commit.slice(0, 7)} already fetched from ${s.url}`);
        count++;
      }
      next.push({ gitDir, revision: s.commit, url: s.url, prefix: s.at });
    }
    level = next;
  }
  return count;
}

const RECORD = 'odooops-submodules.json';

/** Inside `root` (real paths), or an error: a submodule path must not lead out of the checkout. */
function inside(root: string, path: string): string {
  const full = resolve(root, path);
  const rel = relative(root, full);
  if (!rel || rel.startsWith('..') || rel.startsWith('/')) throw new InfraError(`the submodule path ${path} leads out of the checkout`);
  let real = full;
  try {
    real = realpathSync(full);
  } catch {
    real = resolve(realpathSync(dirname(full)), posix.basename(full));
  }
  const realRoot = realpathSync(root);
  if (real !== realRoot && !real.startsWith(`${realRoot}/`)) throw new InfraError(`the submodule path ${path} leads out of the checkout (through a symbolic link)`);
  return full;
}

/**
 * Checks out `revision` in the checkout at `root` with every submodule at its commit (fetched before by
 * fetchSubmodules); submodules an earlier checkout made and this revision no longer has are removed.
 */
export async function checkoutWithSubmodules(root: string, revision: string, repoUrl: string, signal?: AbortSignal): Promise<void> {
  const wanted: { at: string; gitDir: string; commit: string }[] = [];
  let level = [{ gitDir: join(root, '.git'), revision, url: repoUrl, prefix: '' }];
  while (level.length) {
    const next: typeof level = [];
    for (const l of level) {
      for (const s of await submodulesAt(l.gitDir, l.revision, l.url)) {
        const at = posix.join(l.prefix, s.path);
        wanted.push({ at, gitDir: submoduleGitDir(root, s.url), commit: s.commit });
        next.push({ gitDir: submoduleGitDir(root, s.url), revision: s.commit, url: s.url, prefix: at });
      }
    }
    level = next;
  }
  const record = join(root, '.git', RECORD);
  const before: string[] = existsSync(record) ? JSON.parse(await readFile(record, 'utf8')) : [];
  // Removed before the checkout: the repository may now have files where a submodule was.
  for (const at of before.filter((p) => !wanted.some((w) => w.at === p)).sort().reverse()) {
    await runFs.rm(inside(root, at));
  }
  await git(root, ['checkout', '--quiet', '--force', '--detach', revision], signal);
  for (const w of wanted) {
    const dir = inside(root, w.at);
    await runFs.mkdir(dir);
    await git(null, ['--git-dir', w.gitDir, '-c', 'core.bare=false', '--work-tree', dir, 'checkout', '--quiet', '--force', '--detach', w.commit], signal);
  }
  await writeFile(record, JSON.stringify(wanted.map((w) => w.at)));
}

export interface RepositoryModule {
  name: string;
  /** The module's directory, relative to the repository's root (a submodule's path included). */
  path: string;
  version: string;
  /** True for the repository's own modules, false for those of its submodules. */
  own: boolean;
}

const VERSION = /['"]version['"]\s*:\s*['"]([^'"]+)['"]/;

/**
 * Every module (a directory with __manifest__.py) of the repository at `revision`, its submodules'
 * included when their objects are there, and every requirements.txt Odoo.sh installs: the root's and
 * those in a folder holding modules. Read from git's objects, never executed.
 */
export async function repositoryContents(root: string, revision: string, repoUrl: string): Promise<{ modules: RepositoryModule[]; requirements: { path: string; blob: string }[] }> {
  const modules: RepositoryModule[] = [];
  const requirements: { path: string; blob: string }[] = [];
  const walk = async (gitDir: string, rev: string, url: string, prefix: string, own: boolean) => {
    const entries = (await git(null, ['--git-dir', gitDir, 'ls-tree', '-r', '-z', '--full-tree', rev])).split('\0').filter(Boolean);
    const blobs = new Map<string, string>();
    for (const e of entries) {
      const m = /^\d+ blob ([0-9a-f]{40})\t(.+)$/s.exec(e);
      if (m) blobs.set(m[2]!, m[1]!);
    }
    const holders = new Set<string>(['']);
    for (const [f, blob] of blobs) {
      if (posix.basename(f) !== '__manifest__.py') continue;
      const dir = posix.dirname(f);
      const text = await git(null, ['--git-dir', gitDir, 'cat-file', 'blob', blob]);
      modules.push({ name: posix.basename(dir), path: posix.join(prefix, dir), version: VERSION.exec(text)?.[1] ?? '', own });
      holders.add(posix.dirname(dir) === '.' ? '' : posix.dirname(dir));
    }
    for (const h of holders) {
      const f = h ? `${h}/requirements.txt` : 'requirements.txt';
      if (blobs.has(f)) requirements.push({ path: posix.join(prefix, f), blob: blobs.get(f)! });
    }
    for (const s of await submodulesAt(gitDir, rev, url)) {
      const sub = submoduleGitDir(root, s.url);
      const there = await git(null, ['--git-dir', sub, 'cat-file', '-e', `${s.commit}^{commit}`]).then(() => true, () => false);
      if (there) await walk(sub, s.commit, s.url, posix.join(prefix, s.path), false);
    }
  };
  await walk(join(root, '.git'), revision, repoUrl, '', true);
  return { modules, requirements };
}

/** The folders holding modules (Odoo's --addons-path entries), absolute, the checkout's root first. */
export function addonsDirs(root: string, modules: RepositoryModule[]): string[] {
  const dirs = new Set<string>([root]);
  for (const m of modules) {
    const holder = posix.dirname(m.path);
    dirs.add(holder === '.' ? root : join(root, holder));
  }
  return [...dirs];
}
