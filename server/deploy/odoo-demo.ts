// Demo data in the databases a deploy creates (a development environment's first deploy): odoo-bin 17.0
// loads it into a new database unless told not to, 19.0 only when told (--with-demo). Odoo.sh builds
// development branches with demo data, so a new database gets it whatever the runtime's version; the
// option only ever acts on a database odoo-bin creates, never on one that exists.
import { statSync } from 'node:fs';
import { execAs } from '../infra/run-user.ts';

const known = new Map<string, Promise<string[]>>();
const HELP_TIMEOUT_MS = 30_000;

/**
 * What `odooBin` needs to load demo data into a new database: ['--with-demo'] where it has the option.
 * `python`: the interpreter it runs with (an environment's virtual environment), else its own #! line.
 */
export function demoFlags(odooBin: string, python: string | null = null, timeoutMs = HELP_TIMEOUT_MS): Promise<string[]> {
  // The operator may replace the binary (an upgrade) while the worker runs: asked again when it changes.
  const key = `${python ?? ''}\0${odooBin}\0${statSync(odooBin, { throwIfNoEntry: false })?.mtimeMs ?? 0}`;
  let flags = known.get(key);
  if (!flags) {
    // Bounded: a wrapper that does not know --help (and starts a server instead) must not hold the deploy;
    // one that did not answer in time will not the next time either (until it is replaced): remembered.
    const signal = AbortSignal.timeout(timeoutMs);
    flags = (python ? execAs(python, [odooBin, 'server', '--help'], { signal }) : execAs(odooBin, ['server', '--help'], { signal })).then(
      ({ stdout }) => (/^\s*--with-demo\b/m.test(stdout) ? ['--with-demo'] : []),
      // An odoo-bin that cannot say (a wrapper, a busy machine) runs with its own default: asked again next time.
      () => (signal.aborted || known.delete(key), []),
    );
    known.set(key, flags);
  }
  return flags;
}
