// "Download backup" into a place it cannot be saved: said before the download starts, with what to do,
// never "broke off after 38 bytes: ENOENT … Run the command again". Real folders in a temporary one.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { saveProblem } from '../../../client/save-target.ts';
import { ApiClient, CliError, EXIT } from '../../../client/api-client.ts';

describe('where a download is saved', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'odooops-save-target-'));
    mkdirSync(join(dir, 'folder'));
    writeFileSync(join(dir, 'a-file'), 'x');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a file in an existing folder, new or to be replaced, is fine', async () => {
    assert.equal(await saveProblem(join(dir, 'new.zip')), null);
    assert.equal(await saveProblem(join(dir, 'a-file')), null);
  });

  it('a folder that does not exist: says which, and to choose another or create it', async () => {
    const p = await saveProblem(join(dir, 'nope', 'deeper', 'staging.zip'));
    assert.ok(p);
    assert.equal(p.message, `the folder ${join(dir, 'nope', 'deeper')} does not exist`);
    assert.match(p.hint, /Choose another folder, or create it first \(mkdir -p '.*nope\/deeper'\)/);
  });

  it('a file where the folder should be, and a folder where the file should be', async () => {
    assert.match((await saveProblem(join(dir, 'a-file', 'x.zip')))?.message ?? '', /a-file.* (does not exist|is a file, not a folder)/);
    const p = await saveProblem(join(dir, 'folder'));
    assert.equal(p?.message, `${join(dir, 'folder')} is a folder`);
    assert.match(p.hint, /Name a file inside it/);
  });

  it('a folder that cannot be written into', async () => {
    const ro = join(dir, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    chmodSync(dir, 0o755);
    const target = join(ro, 'x.zip');
    // root may write anywhere: the check then runs as nobody (setpriv), as a person without that right.
    const found = process.getuid?.() === 0
      ? JSON.parse(execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e',
        `import { saveProblem } from ${JSON.stringify(new URL('../../../client/save-target.ts', import.meta.url).pathname)}; console.log(JSON.stringify(await saveProblem(${JSON.stringify(target)})))`], { encoding: 'utf8' }))
      : await saveProblem(target);
    assert.match(found?.message ?? '', /cannot write into the folder .*read-only \((EACCES|EPERM)\)/);
    assert.match(found.hint, /Choose another folder/);
  });

  it('the API client refuses before it asks the server: nothing is requested, no .part is left', async () => {
    // A server that would answer if asked: its address is a port nothing listens on, so a request
    // would fail as unreachable, not as this usage error.
    const api = new ApiClient({ url: 'http://127.0.0.1:9', token: 't' });
    const to = join(dir, 'missing', 'b.zip');
    await assert.rejects(api.download('/api/backups/x/download', to, () => {}), (err: unknown) => {
      assert.ok(err instanceof CliError);
      assert.equal(err.exitCode, EXIT.usage);
      assert.match(err.message, /the folder .*missing does not exist/);
      assert.doesNotMatch(`${err.message} ${err.hint}`, /broke off|Run the command again/);
      return true;
    });
  });
});
