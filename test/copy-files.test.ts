// How a clone copies kept files from a filestore on this worker (storage/copy-files.ts): the listed
// files only, paths kept, a file gone since the listing left out, a missing directory a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFilesInto } from '../server/storage/copy-files.ts';
import { fingerprintDir } from './helpers/debian-postgres.ts';

const scratch = () => mkdtempSync(join(tmpdir(), 'odooops-copy-files-'));

test('copies the listed files of each directory, paths kept, nothing else', async () => {
  const root = scratch();
  try {
    const a = join(root, 'a');
    const b = join(root, 'b');
    mkdirSync(join(a, '3f'), { recursive: true });
    mkdirSync(join(a, 'c0'), { recursive: true });
    mkdirSync(b, { recursive: true });
    writeFileSync(join(a, '3f', 'one'), 'one');
    writeFileSync(join(a, 'c0', 'two'), Buffer.alloc(200_000, 7));
    writeFileSync(join(a, 'c0', 'not-listed'), 'stays');
    writeFileSync(join(b, '-dash'), 'a name that looks like an option');
    const lines: string[] = [];
    const into = join(root, 'into');
    const r = await copyFilesInto([
      { dir: a, files: [{ p: '3f/one', n: 3 }, { p: 'c0/two', n: 200_000 }] },
      { dir: b, files: [{ p: '-dash', n: 33 }] },
    ], into, { signal: new AbortController().signal, log: (l) => lines.push(l) });
    assert.deepEqual(r, { files: 3, bytes: 200_036 });
    const got = await fingerprintDir(into);
    const want = await fingerprintDir(a);
    assert.deepEqual(Object.keys(got).sort(), ['-dash', '3f/one', 'c0/two']);
    assert.equal(got['3f/one'], want['3f/one']);
    assert.equal(got['c0/two'], want['c0/two']);
    assert.ok(lstatSync(join(into, 'c0', 'two')).isFile());
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a file deleted since it was listed is left out; the others are copied', async () => {
  const root = scratch();
  try {
    const a = join(root, 'a');
    mkdirSync(a);
    writeFileSync(join(a, 'kept'), 'kept');
    const into = join(root, 'into');
    const lines: string[] = [];
    await copyFilesInto([{ dir: a, files: [{ p: 'gone', n: 4 }, { p: 'kept', n: 4 }] }], into, { signal: new AbortController().signal, log: (l) => lines.push(l) });
    assert.deepEqual(Object.keys(await fingerprintDir(into)), ['kept']);
    assert.match(lines.join('\n'), /files that could not be read were left out: tar: gone: .*No such file/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a source directory that is missing fails with tar\'s message', async () => {
  const root = scratch();
  try {
    await assert.rejects(
      copyFilesInto([{ dir: join(root, 'missing'), files: [{ p: 'x', n: 1 }] }], join(root, 'into'), { signal: new AbortController().signal, log: () => {} }),
      /tar failed \(exit 2\): .*missing/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a cancelled copy stops with the run\'s reason', async () => {
  const root = scratch();
  try {
    const a = join(root, 'a');
    mkdirSync(a);
    const files = Array.from({ length: 200 }, (_, i) => ({ p: `f${i}`, n: 100_000 }));
    for (const f of files) writeFileSync(join(a, f.p), Buffer.alloc(f.n, 1));
    const ac = new AbortController();
    ac.abort(new Error('cancelled by alice'));
    await assert.rejects(copyFilesInto([{ dir: a, files }], join(root, 'into'), { signal: ac.signal, log: () => {} }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
