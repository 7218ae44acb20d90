// A downloaded backup has one name: the server's Content-Disposition (so the CLI's default), what
// `odooops backup download --help` says, and the extension's save dialog (backup-restore.test.ts
// checks the real download against the same function).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backupFileName, type Backup } from '../contract/index.ts';
import { downloadName } from '../extension/src/backupFile.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test("Odoo's database-manager style: <database>_<YYYY-MM-DD_HH-MM-SS>.zip, in UTC", () => {
  assert.equal(backupFileName('shop_dev', '2026-12-01T09:05:03.123Z'), 'shop_dev_2026-12-01_09-05-03.zip');
  assert.equal(backupFileName('shop_dev', '2026-12-01T10:05:03+01:00'), 'shop_dev_2026-12-01_09-05-03.zip', 'UTC, whatever the offset');
  assert.equal(backupFileName('a/b c', '2026-12-01T00:00:00Z'), 'a_b_c_2026-12-01_00-00-00.zip', 'never a path');
});

test('the CLI help names the default the server gives, and the extension proposes it', () => {
  const help = execFileSync(process.execPath, ['server/cli/main.ts', '--help'], { cwd: ROOT }).toString();
  const said = /backup download[\s\S]*?FILE defaults to (\S+) /.exec(help)?.[1];
  assert.equal(said, '<database>_<YYYY-MM-DD_HH-MM-SS>.zip', help);
  const pattern = new RegExp(`^${said!.replace('<database>', 'shop_dev').replace('<YYYY-MM-DD_HH-MM-SS>', '\\d{4}-\\d\\d-\\d\\d_\\d\\d-\\d\\d-\\d\\d').replace('.zip', '\\.zip')}$`);
  const b: Backup = {
    id: '00000000-0000-4000-8000-000000000001', environment: 'dev', kind: 'manual', createdAt: '2026-12-01T09:05:03.123Z', sizeBytes: 1,
    sha256: null, odooVersion: '17.0', database: 'shop_dev', masked: false, runId: 1,
  };
  assert.match(backupFileName('shop_dev', b.createdAt), pattern);
  assert.equal(downloadName(b, 'dev'), 'shop_dev_2026-12-01_09-05-03.zip');
  // A backup listed without its database (an old manifest) is named by its environment.
  assert.equal(downloadName({ ...b, database: null }, 'dev'), 'dev_2026-12-01_09-05-03.zip');
});
