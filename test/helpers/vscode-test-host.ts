// What runTests launches (through ./vscode-test-host): takes VS Code's command line
// (--extensionDevelopmentPath=, --extensionTestsPath=, --extensions-dir=, --user-data-dir=, a folder)
// and runs those tests in code-server, which refuses the two test options on its own command line:
// code-server is started with the smoke-test driver enabled, chromium opens the workbench with the two
// paths in its `payload`, and the extension host's test run reports back through the page's
// codeAutomationLog / codeAutomationExit. Exits with the tests' exit code (0 passed, 1 failed), as
// VS Code does.
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { format } from 'node:util';
import { launchChromium, startCodeServer, stopChildren } from './code-server.ts';

const args = process.argv.slice(2);
const opt = (name: string) => args.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));
const folder = args.find((a) => !a.startsWith('-'));
const [testsPath] = opt('extensionTestsPath');
const devPaths = opt('extensionDevelopmentPath');
// VS Code's --disable-extension (a built-in the tests replace, e.g. its GitHub sign-in). The web
// workbench ignores the server's flag for built-ins it runs itself, so they are also left out of the
// server's scan of built-ins.
const disabled = opt('disable-extension');
if (!testsPath || !devPaths.length || !folder) {
  console.error('usage: vscode-test-host FOLDER --extensionDevelopmentPath=DIR... --extensionTestsPath=MODULE [--extensions-dir=DIR] [--user-data-dir=DIR] [--disable-extension=ID]...');
  process.exit(2);
}
const timeoutMs = Number(process.env.ODOOOPS_VSCODE_TEST_TIMEOUT_MS) || 15 * 60_000;

const children: ChildProcess[] = [];
const state = mkdtempSync(join(tmpdir(), 'odooops-vscode-test-'));
let code = 1;
const browser = await launchChromium();
try {
  // The workbench reads its payload into a Map, so it keeps one extensionDevelopmentPath: the first is
  // the extension under test, any other (a test-only helper extension) is installed into the extensions
  // folder before code-server starts (it then runs in the same extension host, as an installed one).
  for (const dir of devPaths.slice(1)) {
    const extensionsDir = opt('extensions-dir')[0];
    if (!extensionsDir) throw new Error('a second --extensionDevelopmentPath needs --extensions-dir');
    const { publisher, name, version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, string>;
    cpSync(dir, join(extensionsDir, `${publisher}.${name}-${version}`), { recursive: true });
  }
  const cs = await startCodeServer({
    state, folder, userDataDir: opt('user-data-dir')[0], extensionsDir: opt('extensions-dir')[0],
    args: ['--vscode-option', 'enable-smoke-test-driver', ...disabled.flatMap((id) => ['--vscode-option', `disable-extension=${id}`])],
    env: disabled.length ? { VSCODE_SKIP_BUILTIN_EXTENSIONS: disabled.join(',') } : {},
  }, children);
  const remote = (p: string) => `vscode-remote://127.0.0.1:${cs.port}${p}`;
  const payload = [['extensionDevelopmentPath', remote(devPaths[0]!)], ['extensionTestsPath', remote(testsPath)]];
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const exit = new Promise<number>((resolve) => {
    void page.exposeFunction('codeAutomationExit', (c: number) => resolve(Number(c)));
  });
  await page.exposeFunction('codeAutomationLog', (type: string, logArgs: unknown[]) => {
    // The extension host's console arguments, format string first (mocha's reporter uses %s, %d).
    const text = format(...(Array.isArray(logArgs) ? logArgs : [logArgs]));
    (type === 'error' ? process.stderr : process.stdout).write(`${text}\n`);
  });
  await page.goto(`http://127.0.0.1:${cs.port}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  code = await Promise.race([
    exit,
    new Promise<number>((resolve) => setTimeout(() => {
      console.error(`vscode-test-host: no result from the extension host after ${timeoutMs / 1000} s\n${cs.child.output().slice(-4000)}`);
      resolve(1);
    }, timeoutMs).unref()),
  ]);
  if (code !== 0 && process.env.ODOOOPS_VSCODE_TEST_SCREENSHOT) await page.screenshot({ path: process.env.ODOOOPS_VSCODE_TEST_SCREENSHOT }).catch(() => {});
} catch (err) {
  console.error(`vscode-test-host: ${(err as Error).message}`);
} finally {
  await browser.close().catch(() => {});
  await stopChildren(children);
  rmSync(state, { recursive: true, force: true });
}
process.exit(code);
