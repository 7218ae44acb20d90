// Every command an error, a hint or a message names exists: the texts of the server, the database, the
// contract, the extension and the devcontainer feature are searched for "odooops <command>", and each is
// run with --help, which fails (exit 2, unknown command) for a command the CLI does not have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, EXIT } from '../client/api-client.ts';
import { main } from '../server/cli/main.ts';

const ROOT = join(import.meta.dirname, '..');
const SOURCES = ['server', 'contract', 'migrations', 'extension/src', 'extension/package.json', 'devcontainer-feature/src/odooops/start.sh', 'devcontainer-feature/src/odooops/install.sh'];

function files(path: string): string[] {
  const full = join(ROOT, path);
  if (/\.(ts|sql|json|sh)$/.test(path)) return [full];
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|sql|json|sh)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** "odooops word [word]" in anything but a comment; a log prefix ("odooops feature: …") is not a command. */
function namedCommands(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of SOURCES.flatMap(files)) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (/^\s*(\/\/|\/?\*|--|#)/.test(line)) return;
      for (const m of line.matchAll(/(?<![\w/.-])odooops ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(?![\w:-])/g)) {
        const words = [m[1]!, ...(m[2] ? [m[2]] : [])].join(' ');
        if (!found.has(words)) found.set(words, `${file.slice(ROOT.length + 1)}:${i + 1}`);
      }
    });
  }
  return found;
}

async function help(words: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  try {
    return { code: await main([...words, '--help']), out: out.join('\n') };
  } catch (err) {
    return { code: err instanceof CliError ? err.exitCode : EXIT.server, out: (err as Error).message };
  } finally {
    console.log = log;
  }
}

test('every odooops command a message names exists (--help answers for it)', async () => {
  const named = namedCommands();
  // The search finds what it should: commands the hints of this codebase are known to name.
  for (const known of ['infra list', 'env set', 'admin grant', 'dev pull', 'approval request', 'token']) {
    assert.ok([...named.keys()].some((k) => k === known || k.startsWith(`${known} `)), `the search found "odooops ${known}"`);
  }
  const missing: string[] = [];
  for (const [words, where] of named) {
    const r = await help(words.split(' '));
    if (r.code !== EXIT.ok || !r.out.includes('odooops ')) missing.push(`odooops ${words} (${where}): ${r.out.split('\n')[0]}`);
  }
  assert.deepEqual(missing, [], 'commands named in messages that the CLI does not have');
});

test('--help on a command that does not exist fails, so the test above can', async () => {
  const r = await help(['frobnicate']);
  assert.equal(r.code, EXIT.usage);
  assert.match(r.out, /unknown command: frobnicate/);
  const ok = await help(['audit']);
  assert.equal(ok.code, EXIT.ok);
  assert.match(ok.out, /odooops audit PROJECT/);
});

test('every option a message gives a command exists in that command (e.g. odooops env set … --filestore ROOT)', async () => {
  const named: [string, string, string][] = [];
  for (const file of SOURCES.flatMap(files)) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (/^\s*(\/\/|\/?\*|--|#)/.test(line)) return;
      for (const m of line.matchAll(/(?<![\w/.-])odooops ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(?![\w:-])([^()`;"'\\]*)/g)) {
        for (const o of m[3]!.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)) named.push([[m[1]!, ...(m[2] ? [m[2]] : [])].join(' '), o[0], `${file.slice(ROOT.length + 1)}:${i + 1}`]);
      }
    });
  }
  assert.ok(named.some(([c, o]) => c === 'env set' && o === '--filestore'), 'the search finds "odooops env set PROJECT ENV --filestore ROOT"');
  assert.ok(named.some(([c, o]) => c === 'env set' && o === '--db-server'), 'and "odooops env set PROJECT ENV --db-server NAME"');
  const unknown: string[] = [];
  for (const [words, option, where] of named) {
    const r = await help(words.split(' '));
    if (r.code === EXIT.ok && !new RegExp(`${option}(?![\\w-])`).test(r.out)) unknown.push(`odooops ${words} ${option} (${where})`);
  }
  assert.deepEqual(unknown, [], 'options named in messages that their command does not take');
});
