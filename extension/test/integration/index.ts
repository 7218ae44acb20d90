// The extension-host test runner (what @vscode/test-electron's runTests loads as extensionTestsPath):
// mocha inside a real VS Code's extension host, with the real `vscode` API. Built by esbuild into
// extension/dist-test/index.cjs beside the suite.
import { join } from 'node:path';
import Mocha from 'mocha';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 240_000, color: false, reporter: 'spec' });
  mocha.addFile(join(__dirname, 'suite.cjs'));
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures) throw new Error(`${failures} extension-host test(s) failed`);
}
