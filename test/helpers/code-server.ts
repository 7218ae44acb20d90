// A real VS Code here: code-server (installed from npm by scripts/install-code-server.sh, cached per
// machine) driven by Debian's chromium through playwright-core (see ../shared/notes/vscode-e2e.md), and
// the OdooOps demo server it talks to. Shared by the UI end-to-end test, the extension-host tests and
// their runTests wrapper (vscode-test-host.ts).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CODE_SERVER_DIR = process.env.ODOOOPS_CODE_SERVER_DIR ?? '/var/cache/odooops-test/code-server';
export const CODE_SERVER = join(CODE_SERVER_DIR, 'node_modules', '.bin', 'code-server');
export const run = promisify(execFile);

/** Installs code-server into CODE_SERVER_DIR unless it is there; test files may call it at the same time (the script takes a lock). */
export async function installCodeServer(): Promise<void> {
  await run('sh', [join(ROOT, 'scripts', 'install-code-server.sh')], { env: { ...process.env, ODOOOPS_CODE_SERVER_DIR: CODE_SERVER_DIR }, timeout: 20 * 60_000, maxBuffer: 64 << 20 });
}

export async function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export type Child = ChildProcess & { output: () => string };
/** A child process whose last output is kept for the failure message. */
export function startChild(cmd: string, args: string[], env: Record<string, string>, children?: ChildProcess[]): Child {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20000)));
  children?.push(child);
  return Object.assign(child, { output: () => out });
}

export async function stopChildren(children: ChildProcess[]): Promise<void> {
  for (const c of children.reverse()) {
    c.kill('SIGTERM');
    await new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)));
  }
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms: number, child?: Child): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited:\n${child.output()}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${child ? `:\n${child.output()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * `odooops server --demo --fast` on the embedded default, its state in `home`, with any other server
 * options in `args`; resolves when it answers.
 */
export async function startDemoServer(home: string, children: ChildProcess[], env: Record<string, string> = {}, args: string[] = []): Promise<Child> {
  const server = startChild(process.execPath, [join(ROOT, 'server', 'cli', 'main.ts'), 'server', '--demo', '--fast', ...args], { ODOOOPS_HOME: home, ...env }, children);
  await waitFor('the demo server', async () => existsSync(join(home, 'connection.json')), 180_000, server);
  return server;
}

/**
 * code-server on Node 24 (the project's own), every bit of its state under `state` (XDG directories,
 * user data, extensions, config). Extra arguments go before the folder.
 */
export async function startCodeServer(opts: { state: string; folder: string; userDataDir?: string; extensionsDir?: string; args?: string[]; env?: Record<string, string> }, children: ChildProcess[]) {
  const xdg = join(opts.state, 'xdg');
  const env = {
    PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`,
    XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: xdg, XDG_CACHE_HOME: xdg, ...opts.env,
  };
  const userData = opts.userDataDir ?? join(opts.state, 'user');
  const dirs = ['--user-data-dir', userData, '--extensions-dir', opts.extensionsDir ?? join(opts.state, 'extensions')];
  // No chat side bar or AI prompts: screenshots show what the extension shows.
  mkdirSync(join(userData, 'User'), { recursive: true });
  const settings = join(userData, 'User', 'settings.json');
  if (!existsSync(settings)) writeFileSync(settings, JSON.stringify({ 'workbench.secondarySideBar.defaultVisibility': 'hidden', 'chat.disableAIFeatures': true, 'workbench.startupEditor': 'none' }));
  const port = await freeTcpPort();
  const child = startChild(CODE_SERVER, ['--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', ...dirs, '--config', join(opts.state, 'code-server.yaml'), ...(opts.args ?? []), opts.folder], env, children);
  await waitFor('code-server', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok ?? false, 60_000, child);
  return { port, env, dirs, child };
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
