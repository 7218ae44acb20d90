// `npm run package` makes the .vsix that is published to the Visual Studio Marketplace and Open VSX:
// what VS Code runs (the minified bundle and the log viewer), the page the Marketplace shows (README,
// CHANGELOG, icon) and the licence, and nothing else: no sources, tests, sourcemaps or build files.
// The manifest has what both galleries show and search by, and the README links resolve once published.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import yauzl from 'yauzl';

const ROOT = join(import.meta.dirname, '..');
const EXTENSION = join(ROOT, 'extension');
const run = promisify(execFile);
const manifest = JSON.parse(readFileSync(join(EXTENSION, 'package.json'), 'utf8'));
// The categories the Visual Studio Marketplace (and Open VSX, which takes the same) offers.
const GALLERY_CATEGORIES = ['AI', 'Azure', 'Chat', 'Data Science', 'Debuggers', 'Education', 'Extension Packs', 'Formatters', 'Keymaps',
  'Language Packs', 'Linters', 'Machine Learning', 'Notebooks', 'Other', 'Programming Languages', 'SCM Providers', 'Snippets', 'Testing', 'Themes', 'Visualization'];

/** Every entry of a zip with its content, read with yauzl. */
async function unzip(path: string): Promise<Map<string, Buffer>> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => yauzl.open(path, { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z!))));
  const entries = new Map<string, Buffer>();
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject).on('end', resolve).on('entry', (entry: yauzl.Entry) => {
      zip.openReadStream(entry, (err, stream) => {
        if (err) return reject(err);
        const chunks: Buffer[] = [];
        stream!.on('data', (c: Buffer) => chunks.push(c)).on('error', reject).on('end', () => {
          entries.set(entry.fileName, Buffer.concat(chunks));
          zip.readEntry();
        });
      });
    });
    zip.readEntry();
  });
  return entries;
}

/** Width and height from a PNG's IHDR chunk (null: not a PNG). */
function pngSize(png: Buffer): { width: number; height: number } | null {
  if (png.length < 24 || !png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return null;
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

test('npm run package: the .vsix holds the bundle, icon, README, CHANGELOG and licence, and no source, test, sourcemap or build file', async () => {
  // npm run package is this script; the test runs it as npm would, into a scratch file.
  const rootManifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(rootManifest.scripts.package, 'node scripts/package-extension.ts');
  const scratch = mkdtempSync(join(tmpdir(), 'odooops-package-'));
  try {
    const vsix = join(scratch, 'odooops.vsix');
    await run(process.execPath, [join(ROOT, 'scripts', 'package-extension.ts'), '--out', vsix], { cwd: ROOT, maxBuffer: 16 << 20 });
    const entries = await unzip(vsix);
    const names = [...entries.keys()].sort();
    console.log(`odooops.vsix: ${names.length} files\n  ${names.join('\n  ')}`);

    for (const wanted of ['extension/package.json', 'extension/dist/extension.cjs', 'extension/dist/webview.js', 'extension/media/icon.png',
      'extension/media/odooops.svg', 'extension/readme.md', 'extension/changelog.md', 'extension/LICENSE.txt']) {
      assert.ok(names.includes(wanted), `${wanted} is in the .vsix: ${names.join(', ')}`);
    }
    const unwanted = names.filter((n) =>
      /(^|\/)(src|test|dist-test|node_modules|webview)\//.test(n.replace(/^extension\/dist\//, '')) // sources, tests, dependencies
      || /\.(ts|mts|cts|map|tsbuildinfo)$/.test(n) // TypeScript and sourcemaps
      || /(^|\/)(tsconfig[^/]*\.json|\.vscodeignore|esbuild\.m?js|icon\.svg)$/.test(n) // build files, the icon's source
      || /\/screenshots\//.test(n)); // the README's images are fetched from the repository, not shipped
    assert.deepEqual(unwanted, [], `left out of the .vsix: ${unwanted.join(', ')}`);
    // The bundle is the production build: minified, without a sourcemap comment.
    const bundle = entries.get('extension/dist/extension.cjs')!.toString('utf8');
    assert.doesNotMatch(bundle, /sourceMappingURL/);
    const perLine = bundle.length / bundle.split('\n').length;
    assert.ok(perLine > 500, `the bundle is minified (${perLine.toFixed(0)} characters a line)`);

    // The packaged README's relative links now point into the repository's extension/ folder, and
    // each image it shows is a PNG this repository has there (the Marketplace refuses SVG in a README).
    const readme = entries.get('extension/readme.md')!.toString('utf8');
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    assert.ok(images.length >= 3, `the README shows screenshots: ${images.join(', ')}`);
    const base = `${manifest.repository.url}/raw/HEAD/extension/`;
    for (const url of images) {
      assert.ok(url.startsWith(base), `${url} points into ${base}`);
      const local = join(EXTENSION, url.slice(base.length));
      assert.ok(existsSync(local), `${url}: ${local} exists`);
      assert.ok(pngSize(readFileSync(local)), `${local} is a PNG`);
    }
    for (const [, link] of readme.matchAll(/(?<!!)\[[^\]]*\]\(([^)\s]+)\)/g)) {
      if (link!.startsWith(`${manifest.repository.url}/blob/HEAD/`)) assert.ok(existsSync(join(ROOT, link!.slice(`${manifest.repository.url}/blob/HEAD/`.length).replace(/#.*$/, ''))), `${link} exists in the repository`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('the manifest has what the Marketplace and Open VSX show: a 128×128 PNG icon, categories, keywords, repository, bugs, homepage, banner', () => {
  assert.equal(manifest.icon, 'media/icon.png');
  assert.deepEqual(pngSize(readFileSync(join(EXTENSION, manifest.icon))), { width: 128, height: 128 });
  assert.ok(Array.isArray(manifest.categories) && manifest.categories.length > 0);
  for (const c of manifest.categories) assert.ok(GALLERY_CATEGORIES.includes(c), `${c} is a Marketplace category`);
  assert.ok(manifest.keywords.length <= 30, 'the Marketplace takes at most 30 keywords');
  for (const k of ['odoo', 'backup', 'postgres', 'deploy', 'devops']) assert.ok(manifest.keywords.includes(k), `keyword ${k}`);
  assert.match(manifest.repository.url, /^https:\/\/github\.com\/[^/]+\/[^/]+$/);
  assert.equal(manifest.repository.directory, 'extension');
  assert.match(manifest.bugs.url, /^https:\/\//);
  assert.match(manifest.homepage, /^https:\/\//);
  assert.match(manifest.galleryBanner.color, /^#[0-9a-f]{6}$/i);
  assert.ok(['dark', 'light'].includes(manifest.galleryBanner.theme));
  assert.match(manifest.publisher, /^[a-z0-9][a-z0-9-]*$/i);
  assert.match(manifest.version, /^\d+\.\d+\.\d+$/);
});

test('the CHANGELOG follows Keep a Changelog', () => {
  const changelog = readFileSync(join(EXTENSION, 'CHANGELOG.md'), 'utf8');
  assert.match(changelog, /^# Changelog\n/);
  assert.match(changelog, /keepachangelog\.com/);
  const versions = [...changelog.matchAll(/^## \[([^\]]+)\]/gm)].map((m) => m[1]);
  assert.ok(versions.length > 0 && versions.every((v) => v === 'Unreleased' || /^\d+\.\d+\.\d+$/.test(v!)), versions.join(', '));
  assert.match(changelog, /^### (Added|Changed|Deprecated|Removed|Fixed|Security)$/m);
});

test('the README is written for users: every command and setting, what OdooOps does, no developer internals', () => {
  const readme = readFileSync(join(EXTENSION, 'README.md'), 'utf8');
  // A command no menu or palette offers (the tree's "Show more…" node runs it) is not one a user looks up.
  const hidden = new Set((manifest.contributes.menus.commandPalette as { command: string; when?: string }[]).filter((m) => m.when === 'false').map((m) => m.command));
  const inMenus = new Set(Object.entries(manifest.contributes.menus as Record<string, { command: string }[]>).filter(([k]) => k !== 'commandPalette').flatMap(([, v]) => v.map((m) => m.command)));
  for (const { title, command } of manifest.contributes.commands as { title: string; command: string }[]) {
    if (hidden.has(command) && !inMenus.has(command)) continue;
    assert.ok(readme.includes(title.replace(/ \(.*\)$/, '')), `the README names the command "${title}"`);
  }
  for (const setting of Object.keys(manifest.contributes.configuration.properties)) assert.ok(readme.includes(setting), `the README names ${setting}`);
  for (const topic of [/deploy/i, /approv/i, /development environment/i, /download/i, /health/i, /masked/i, /restore/i, /npm start/, /Connect…/, /sign in/i, /viewer/, /admin/]) {
    assert.match(readme, topic);
  }
  for (const internal of ['contextValue', 'WebviewPanelSerializer', 'mocha', 'extension-host', 'esbuild']) assert.ok(!readme.includes(internal), `no "${internal}" in the user README`);
});

test('the welcome views are plain text with links: no literal backticks, and a Retry when no server is connected', () => {
  const welcomes = manifest.contributes.viewsWelcome as { contents: string; when: string }[];
  for (const w of welcomes) assert.ok(!w.contents.includes('`'), `no backticks (shown as they are): ${w.contents}`);
  const offline = welcomes.find((w) => w.when.includes('!odooops.connected'));
  assert.ok(offline, 'a welcome for no connection');
  assert.match(offline.contents, /^\[Retry\]\(command:odooops\.refresh\)$/m);
  assert.match(offline.contents, /^\[Connect…\]\(command:odooops\.connect\)$/m);
});
