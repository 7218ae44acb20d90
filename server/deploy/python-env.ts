// An environment's own Python: a virtual environment per environment on the worker, made from the
// interpreter that runs the operator's odoo-bin with --system-site-packages (Odoo's Debian-installed
// dependencies stay visible), into which the repository's requirements.txt files are installed with
// pip. Where pip takes packages from is the operator's (the runtime's `pip` in the registry), never the
// repository's: a requirements line that is a pip option (--index-url, -e, -r, -f …), a URL or a path
// is refused, and pip runs --isolated (no pip.conf, no PIP_* variables) with the registry's settings.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InfraError, type LocalRuntime } from '../infra/registry.ts';
import { linesOf } from '../infra/output-lines.ts';
import { execAs, runFs, spawnAs, toolEnv } from '../infra/run-user.ts';

export const venvDir = (workDir: string, envId: string) => join(workDir, 'venvs', envId);
export const venvPython = (workDir: string, envId: string) => join(venvDir(workDir, envId), 'bin', 'python');

/** The interpreter that runs odoo-bin: the runtime's `python`, or the absolute one odoo-bin's #! line names. */
export function odooPython(runtime: LocalRuntime, runtimeName: string): string {
  if (runtime.python) return runtime.python;
  let first = '';
  try {
    first = readFileSync(runtime.odooBin, 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    throw new InfraError(`the runtime ${runtimeName}'s odoo-bin cannot be read on this worker`);
  }
  const m = /^#!\s*(\/\S+)\s*$/.exec(first);
  // "#!/usr/bin/env python3" would be whatever python3 comes first on PATH (a pyenv one, say), not Odoo's.
  if (!m || /\/env$/.test(m[1]!)) {
    throw new InfraError(`the runtime ${runtimeName}'s odoo-bin does not name its Python with an absolute #! line; the operator sets python: /usr/bin/python3 (the interpreter Odoo's dependencies are installed for) in the runtime`);
  }
  return m[1]!;
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\s*\[[A-Za-z0-9._,\s-]*\])?/;
const HASH = /\s+--hash=[a-z0-9]+:[0-9a-fA-F]+/g;

/**
 * A requirements.txt reduced to requirement specifiers (name, extras, versions, markers, --hash), or
 * an error naming the first line that would choose where pip looks or what it reads.
 */
export function checkRequirements(text: string, file: string): string[] {
  const out: string[] = [];
  const logical: { n: number; line: string }[] = [];
  let pending: { n: number; line: string } | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const piece = raw.replace(/(^|\s)#.*$/, '');
    if (pending) pending.line += piece;
    else pending = { n: i + 1, line: piece };
    if (pending.line.endsWith('\\')) pending.line = pending.line.slice(0, -1);
    else {
      logical.push(pending);
      pending = null;
    }
  });
  if (pending) logical.push(pending);
  for (const { n, line } of logical) {
    const l = line.trim();
    if (!l) continue;
    const refuse = (why: string) => {
      throw new InfraError(`${file} line ${n}: "${l.slice(0, 200)}" ${why}; OdooOps installs requirements by name and version only, from the package index the operator set in the registry (the runtime's pip settings): remove the line`);
    };
    if (l.startsWith('-')) refuse('is a pip option (it would choose an index, another file or an editable path)');
    const bare = l.replace(HASH, '');
    if (/:\/\/|(^|\s)@|^[./~]/.test(bare) || /\s-/.test(bare)) refuse('is a URL, a path or carries a pip option');
    const spec = bare.split(';')[0]!;
    const name = NAME.exec(spec);
    if (!name || !/^\s*([<>=!~]=?[^;,]*\s*(,\s*[<>=!~]=?[^;,]*\s*)*)?$/.test(spec.slice(name[0].length))) refuse('is not a requirement specifier (name[extras] version; markers)');
    out.push(l);
  }
  return out;
}

export interface RequirementsInstall {
  workDir: string;
  envId: string;
  runtime: LocalRuntime;
  runtimeName: string;
  /** The checkout, and the requirements files in it (relative paths). */
  checkout: string;
  files: string[];
  log(line: string): Promise<void>;
  signal?: AbortSignal;
}

/**
 * Installs the requirements into the environment's venv (made first when missing); skipped when the
 * same requirements were installed with the same settings. Returns the venv's python, or null when the
 * runtime has no pip settings (the operator did not ask for installs) or there is nothing to install.
 */
export async function installRequirements(o: RequirementsInstall): Promise<string | null> {
  const pip = o.runtime.pip;
  if (!o.files.length) return existsSync(venvPython(o.workDir, o.envId)) ? venvPython(o.workDir, o.envId) : null;
  if (!pip) {
    await o.log(`requirements (${o.files.join(', ')}) not installed: the runtime ${o.runtimeName} has no pip settings in the registry (the operator adds pip: {} to it, with an index or find-links directory, to have them installed)`);
    return null;
  }
  // Checked before anything is made: a refused line fails the run with nothing touched.
  const specs: string[] = [];
  for (const f of o.files) {
    specs.push(`# ${f}`, ...checkRequirements(await readFile(join(o.checkout, f), 'utf8'), f));
  }
  const dir = venvDir(o.workDir, o.envId);
  const python = venvPython(o.workDir, o.envId);
  const base = odooPython(o.runtime, o.runtimeName);
  const settings = [
    ...(pip.noIndex ? ['--no-index'] : []),
    ...(pip.indexUrl ? ['--index-url', pip.indexUrl] : []),
    ...(pip.extraIndexUrls ?? []).flatMap((u) => ['--extra-index-url', u]),
    ...(pip.findLinks ?? []).flatMap((p) => ['--find-links', p]),
    ...(pip.cacheDir ? ['--cache-dir', pip.cacheDir] : ['--no-cache-dir']),
  ];
  const wanted = createHash('sha256').update(JSON.stringify([base, settings, specs])).digest('hex');
  const mark = join(dir, '.odooops-installed');
  if (existsSync(python) && existsSync(mark) && (await readFile(mark, 'utf8')).trim() === wanted) {
    await o.log(`requirements unchanged since they were installed into the environment's virtual environment`);
    return python;
  }
  if (!existsSync(python)) {
    await runFs.mkdir(join(o.workDir, 'venvs'));
    await o.log(`making the environment's virtual environment (${base} -m venv --system-site-packages)`);
    // Without pip of its own: the system's pip (python3-pip) is visible through the system site packages.
    await execAs(base, ['-m', 'venv', '--system-site-packages', '--without-pip', dir], { signal: o.signal }).catch((err) => {
      throw new Error(`could not make the virtual environment with ${base}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n').at(-1)}`);
    });
  }
  await execAs(python, ['-m', 'pip', '--version'], { signal: o.signal }).catch(() => {
    throw new InfraError(`pip is not available to ${base} on this worker: the operator installs it (apt-get install python3-pip)`);
  });
  const file = join(dir, '.odooops-requirements.txt');
  await writeFile(file, `${specs.join('\n')}\n`);
  await o.log(`installing ${o.files.join(', ')} into the environment's virtual environment`);
  const child = spawnAs(python, ['-m', 'pip', 'install', '--isolated', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off', ...settings, '-r', file], {
    env: toolEnv(), stdio: ['ignore', 'pipe', 'pipe'], signal: o.signal,
  });
  const code = await linesOf(child, (l) => o.log(`pip.log: ${l}`), 'pip');
  if (code !== 0) throw new Error(`pip could not install ${o.files.join(', ')} (exit ${code}; see pip.log above)`);
  await writeFile(mark, `${wanted}\n`);
  return python;
}
