// The OdooOps directory (--home / ODOOOPS_HOME) must be a directory: anything else is a clear error
// before the server touches anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../server/app.ts';

test('an OdooOps home that is a file is refused with what to do', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'odooops-home-')), 'not-a-dir');
  writeFileSync(file, 'x');
  await assert.rejects(startServer({ home: file, log: () => {} }), /the OdooOps directory .*not-a-dir is a file, not a directory; point --home \(or ODOOOPS_HOME\) at a directory/);
  assert.equal(readFileSync(file, 'utf8'), 'x', 'left as it was');
});
