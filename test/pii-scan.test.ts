// The stream scanner that checks every row a clone receives: tokens found whatever the chunking, in
// the forms Odoo stores them (CSV-quoted, in HTML, in "Name <email>" lists), normalized like the SQL check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PiiScanner } from '../server/odoo/pii-scan.ts';
import { parseMaskProfile } from '../server/odoo/mask.ts';

const sample = { emails: ['jane.doe@gmail.com'], phones: ['+32 499 12 34 56'], vats: ['BE0123456789'] };

async function scanInChunks(text: string, size: number): Promise<{ found: number; bytes: string }> {
  const s = new PiiScanner(sample);
  const buf = Buffer.from(text, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), s.stream('t'), new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
  return { found: s.hits.get('t') ?? 0, bytes: Buffer.concat(out).toString('utf8') };
}

const rows = [
  '1,"Jane Doe","""Jane"" <JANE.DOE@gmail.com>",masked 1234\n',
  '2,"<p>Call me on +32 (499) 12.34.56, thanks</p>",,\n',
  '3,Société Générale,"VAT be0123456789 — ok",\n',
  '4,"x@example.invalid, +00 0123456789",BE9999999999,\n',
].join('');

test('finds every sampled value, whatever the chunk size, and passes the bytes through unchanged', async () => {
  for (const size of [1, 2, 3, 7, 16, 64, 1 << 16]) {
    const r = await scanInChunks(rows, size);
    assert.equal(r.found, 3, `chunk size ${size}`);
    assert.equal(r.bytes, rows);
  }
});

test('masked values and look-alikes are not findings', async () => {
  const r = await scanInChunks('1,"u0a1b2c3d4e5f6a7b@example.invalid",+00 0499123456,masked ab12\n2,xjane.doe@gmail.com,BE01234567890\n', 5);
  assert.equal(r.found, 0);
});

test('a long value without separators is scanned without unbounded carrying', async () => {
  const long = `${'word '.repeat(400_000)}jane.doe@gmail.com ${'word '.repeat(10)}`;
  assert.equal((await scanInChunks(long, 65536)).found, 1);
  const hex = `\\x${'ab01'.repeat(1_000_000)}`;
  const started = performance.now();
  assert.equal((await scanInChunks(hex, 65536)).found, 0);
  assert.ok(performance.now() - started < 5000, 'linear in the value, not quadratic');
});

test('masking profiles are read from JSON or YAML and checked', () => {
  const yaml = `version: 1
columns:
  res_partner.email: { strategy: email }
  res_partner.comment:
    strategy: fixed
    value: "n/a"
    where: { column: is_company, op: eq, value: true }
truncate: [mail_mail]
`;
  const p = parseMaskProfile(yaml);
  assert.equal(p.columns['res_partner.email']!.strategy, 'email');
  assert.deepEqual(p.columns['res_partner.comment']!.where, { column: 'is_company', op: 'eq', value: true });
  assert.deepEqual(parseMaskProfile(JSON.stringify(p)), p);
  assert.throws(() => parseMaskProfile('version: 1\ncolumns:\n  res_partner.email: { strategy: scramble }\n'), /invalid masking profile: columns\.res_partner\.email\.strategy/);
  assert.throws(() => parseMaskProfile('version: 1\ncolumns: [unclosed\n'), /invalid masking profile: not JSON or YAML/);
});
