#!/usr/bin/env node
// Installed entry point: the bundle when built (npm run build, for Node >= 22), else the TypeScript
// sources, which Node runs directly from 22.18 (23.6 on the 23 line). This file is plain JavaScript that
// an older Node still runs, so that it can say in one line what is needed instead of failing with a stack
// trace on the first .ts import. The project's npm scripts and `npx odooops` run on the Node 24 that
// `npm install` brings (the `node` dev dependency), whatever the machine's own Node is.
import { existsSync } from 'node:fs';
const bundle = new URL('../dist/odooops.mjs', import.meta.url);
const built = existsSync(bundle);
const supported = built ? Number(process.versions.node.split('.')[0]) >= 22 : Boolean(process.features.typescript);
if (!supported) {
  const needed = built ? 'Node.js >= 22' : 'Node.js >= 22.18 to run its TypeScript sources';
  console.error(`odooops: needs ${needed}, and this is Node.js ${process.version}; in the project, after \`npm install\`, \`npx odooops …\` and \`npm start\` run on the project's own Node 24.`);
  // 2, "usage", as for other mistakes in how odooops was called; 1 would read as "the run failed".
  process.exit(2);
}
const entry = built ? bundle : new URL('../server/cli/main.ts', import.meta.url);
const { runCli } = await import(entry.href);
await runCli(process.argv.slice(2));
