import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The OdooOps package directory, found from this module whether it runs from the sources
 * (server/...) or from the bundle (dist/odooops.mjs): migrations/ and the SQL shims ship beside it.
 */
export function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'odooops') return dir;
    if (dir === dirname(dir)) throw new Error('cannot find the OdooOps package directory (with migrations/) above ' + import.meta.url);
  }
}
