#!/usr/bin/env node
// Installed entry point: the bundle when built (npm run build), else the TypeScript sources, which
// Node >= 22.18 runs directly.
import { existsSync } from 'node:fs';
const bundle = new URL('../dist/odooops.mjs', import.meta.url);
const entry = existsSync(bundle) ? bundle : new URL('../server/cli/main.ts', import.meta.url);
const { runCli } = await import(entry.href);
await runCli(process.argv.slice(2));
