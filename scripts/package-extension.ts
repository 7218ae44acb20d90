// `npm run package`: the extension as it is published, odooops.vsix (or --out <file>). Builds the
// extension and the log viewer minified, without sourcemaps, then runs vsce. The README's relative links
// (screenshots, other files) become links into the repository's extension/ folder: vsce would point
// them at the repository's root, where they do not exist, since the extension lives in a subfolder.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = join(import.meta.dirname, '..');
const extension = join(root, 'extension');
const at = process.argv.indexOf('--out');
const out = resolve(at > 0 && process.argv[at + 1] ? process.argv[at + 1]! : join(root, 'odooops.vsix'));

const manifest = JSON.parse(readFileSync(join(extension, 'package.json'), 'utf8')) as { repository: { url: string; directory?: string } };
const repo = manifest.repository.url.replace(/\.git$/, '').replace(/\/$/, '');
if (!/^https:\/\/github\.com\/[^/]+\/[^/]+$/.test(repo)) throw new Error(`extension/package.json: repository.url should be https://github.com/<owner>/<name>, not ${repo}`);
const folder = manifest.repository.directory ?? 'extension';

execFileSync(process.execPath, [join(root, 'esbuild.mjs'), '--production', '--only=extension,webview'], { cwd: root, stdio: 'inherit' });
execFileSync(process.execPath, [
  join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--out', out,
  '--baseContentUrl', `${repo}/blob/HEAD/${folder}`, '--baseImagesUrl', `${repo}/raw/HEAD/${folder}`,
], { cwd: extension, stdio: 'inherit' });
