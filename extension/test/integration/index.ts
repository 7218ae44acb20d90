// The extension-host test runner (what @vscode/test-electron's runTests loads as extensionTestsPath):
// mocha inside a real VS Code's extension host, with the real `vscode` API. Built by esbuild into
// extension/dist-test/index.cjs beside the suite.
import { join } from 'node:path';
import Mocha from 'mocha';

export async function run(): Promise<void> {
  // ODOOOPS_IT_GREP runs only the tests whose titles match (while working on some of them).
  const mocha = new Mocha({ ui: 'bdd', timeout: 240_000, color: false, reporter: 'spec', ...(process.env.ODOOOPS_IT_GREP ? { grep: process.env.ODOOOPS_IT_GREP } : {}) });
  mocha.addFile(join(__dirname, 'suite.cjs'));
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures) throw new Error(`${failures} extension-host test(s) failed`);
}
