// The odooops command in a dev container: the bundled CLI (odooops.mjs, built by `npm run build`) run
// by whatever Node.js 18+ the image has.
import { runCli } from './odooops.mjs';

await runCli(process.argv.slice(2));
