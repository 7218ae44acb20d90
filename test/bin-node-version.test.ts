// bin/odooops.mjs on a Node too old for the sources (the system Node of a fresh Debian/Ubuntu machine is
// often 20): one line saying which Node is needed and how to get it, not a stack trace; on the project's
// own Node it runs the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', 'bin', 'odooops.mjs');

/** The machine's own Node when it cannot run TypeScript (no type stripping), else undefined. */
async function oldNode(): Promise<string | undefined> {
  for (const node of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(node)) continue;
    const { stdout } = await run(node, ['-p', 'Boolean(process.features?.typescript)']);
    if (stdout.trim() === 'false') return node;
  }
  return undefined;
}

test('on a Node without type stripping, odooops says which Node it needs in one line and exits 2', async (t) => {
  const node = await oldNode();
  if (!node) return t.skip('no Node older than 22.18 on this machine');
  const version = (await run(node, ['--version'])).stdout.trim();
  const res = await run(node, [BIN, '--help']).then(() => assert.fail('odooops ran on ' + version), (err) => err);
  assert.equal(res.code, 2);
  assert.equal(res.stdout, '');
  const lines = res.stderr.trim().split('\n');
  assert.equal(lines.length, 1, res.stderr);
  assert.match(lines[0], /^odooops: needs Node\.js >= 22/);
  assert.ok(lines[0].includes(version), lines[0]);
  assert.match(lines[0], /npx odooops/);
});

test("on the project's Node, odooops runs", async () => {
  const { stdout } = await run(process.execPath, [BIN, '--help']);
  assert.match(stdout, /^odooops — run self-hosted Odoo/);
});
