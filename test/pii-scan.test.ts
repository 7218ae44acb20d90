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

// Person names and street lines: found as whole words, ASCII case-insensitively, whatever separates the
// words; never inside a longer word; never in what the masking itself writes.
const people = { emails: [], phones: [], vats: [], names: ['Ana Almeida', 'Chloé Dubois', "Seán O'Brien-Walsh"], streets: ['12 Rue de la Loi', 'Bus 4'] };

async function phrasesInChunks(text: string, size: number, sample = people): Promise<number> {
  const s = new PiiScanner(sample);
  const buf = Buffer.from(text, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  await pipeline(Readable.from(chunks), s.stream('t'), new Writable({ write: (_c, _e, cb) => cb() }));
  return s.hits.get('t') ?? 0;
}

test('names and streets: whole words, any separator and case, across chunk boundaries', async () => {
  const text = [
    '1,ANA ALMEIDA,x\n', // upper case, CSV field
    '2,"<p>Dear  Ana\nAlmeida,</p>",\n', // two spaces, a newline, HTML
    '3,"{""en_US"": ""chloé dubois""}",\n', // jsonb, non-ASCII letter
    '4,"sean o\'brien walsh, seán o\'brien walsh",\n', // the ASCII spelling is another name; punctuation differs
    '5,12 rue de la loi\n', // at the very end of a line
    '6,Ana Almeida', // at the very end of the stream
  ].join('');
  for (const size of [1, 2, 5, 64, 1 << 16]) assert.equal(await phrasesInChunks(text, size), 6, `chunk size ${size}`);
});

test('names and streets never span two CSV fields or rows; inside a quoted field any separator goes', async () => {
  const sample = { ...people, streets: ['Kerkstraat 12'] };
  const across = '1,Ana,Almeida\n2,"x","Ana"\n3,"Almeida"\n4,Kerkstraat\n12,"x"\n';
  for (const size of [1, 4, 1 << 16]) assert.equal(await phrasesInChunks(across, size, sample), 0, `chunk size ${size}`);
  const within = '1,"Dear Ana,\nAlmeida ""the elder""",x\n2,"Kerkstraat, 12"\n';
  for (const size of [1, 4, 1 << 16]) assert.equal(await phrasesInChunks(within, size, sample), 2, `chunk size ${size}`);
});

test('names and streets: not inside longer words, not the fakes the masking writes, not short or one-word values', async () => {
  const text = '1,Anal Almeida,Ana Almeidas,Xana Almeida,112 Rue de la Loi,12 Rue de la Loire\n2,"Alex Example 1a2b",masked 0123abcd,"Chloe Dubois","Chloé Duboisé"\n3,bus 4,Mitchell\n';
  assert.equal(await phrasesInChunks(text, 3), 0);
  const fakes = { emails: [], phones: [], vats: [], names: ['Alex Example', 'Sam Sample 1a2b', 'Masked Abc123', 'Mitchell', 'Li Bo'], streets: ['Centrum', 'Bus 4'] };
  const scanner = new PiiScanner(fakes);
  assert.equal(scanner.scan('t', 'Alex Example 0a1b, Sam Sample 1a2b, masked abc123, Mitchell, Li Bo, Centrum, Bus 4'), 0, 'nothing of that is sampled');
});

test('the phrase automaton keeps up with the stream: 64 MiB of rows against 400 phrases', async () => {
  const names = Array.from({ length: 200 }, (_, i) => `Person${i} Family${i % 37}`);
  const streets = Array.from({ length: 200 }, (_, i) => `${i} Street of Number${i}`);
  const s = new PiiScanner({ emails: [], phones: [], vats: [], names, streets });
  const row = Buffer.from('12345,"Alex Example 1a2b","u0a1b2c3d4e5f6a7b@example.invalid",+00 0499123456,"<p>Met somebody at the fair; prefers calls before noon.</p>",Person7 Family8,Street of Number3\n');
  const chunk = Buffer.concat(Array.from({ length: Math.ceil((1 << 20) / row.length) }, () => row));
  const started = performance.now();
  await pipeline(Readable.from(Array.from({ length: 64 }, () => chunk)), s.stream('t'), new Writable({ write: (_c, _e, cb) => cb() }));
  const seconds = (performance.now() - started) / 1000;
  console.log(`# stream scan with 400 phrases: ${(64 / seconds).toFixed(0)} MiB/s`);
  assert.equal(s.hits.get('t') ?? 0, 0);
  assert.ok(seconds < 30, `${seconds} s`);
});

test('the phrase automaton finds exactly what a plain word-by-word search finds (random CSV, random chunks)', async () => {
  const { PhraseMatcher, normalizePhrase } = await import('../server/odoo/phrase-scan.ts');
  const phrases = ['ana almeida', 'ana almeida da silva', 'almeida da', '12 rue de la loi', 'rue de', 'chloé dubois', 'la loi 12'];
  const m = new PhraseMatcher(phrases.map((phrase, i) => ({ phrase, kind: i % 2 })));
  /** Word ends where some phrase ends, counted per CSV field (commas and line ends outside quotes). */
  const reference = (text: string) => {
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    for (const ch of text) {
      if (ch === '"') quoted = !quoted;
      if (!quoted && (ch === ',' || ch === '\n' || ch === '\r')) {
        fields.push(field);
        field = '';
      } else field += ch;
    }
    fields.push(field);
    let hits = 0;
    for (const f of fields) {
      const words = normalizePhrase(f).split(' ');
      for (let j = 0; j < words.length; j++) {
        if (phrases.some((p) => { const w = p.split(' '); return j + 1 >= w.length && w.every((x, i) => words[j + 1 - w.length + i] === x); })) hits++;
      }
    }
    return hits;
  };
  const vocabulary = ['ana', 'ANA', 'Almeida', 'almeidas', 'da', 'silva', '12', 'rue', 'de', 'la', 'loi', 'chloé', 'CHLOé', 'dubois', 'x', 'anal'];
  const separators = [' ', '  ', ',', '\n', '"', '""', ', ', '-', '\t', '.', '\r\n', '<p>'];
  let seed = 42;
  // An LCG's high bits (its low ones repeat with a short period).
  const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) >>> 16) % n;
  let total = 0;
  for (let trial = 0; trial < 2000; trial++) {
    let text = '';
    for (let i = 0, len = 1 + rand(40); i < len; i++) text += vocabulary[rand(vocabulary.length)]! + separators[rand(separators.length)]!;
    const bytes = Buffer.from(text);
    const cur = m.cursor(true);
    let found = 0;
    for (let at = 0; at < bytes.length; ) {
      const size = 1 + rand(12);
      found += m.feed(cur, bytes.subarray(at, at + size));
      at += size;
    }
    found += m.end(cur);
    const expected = reference(text);
    assert.equal(found, expected, JSON.stringify(text));
    total += expected;
  }
  assert.ok(total > 500, `the random texts hold phrases (${total})`);
});

// The scanner finds tokens by hand over bytes (no regex, no string per candidate); what it finds must be
// what the SQL check's regular expressions find, as a global regex finds them (leftmost, greedy, no overlap).
function byRegex(sample: { emails: string[]; phones: string[]; vats: string[] }, text: string): number {
  const emails = new Set(sample.emails.map((v) => v.toLowerCase()));
  const phones = new Set(sample.phones.map((v) => v.replace(/[^0-9]/g, '')));
  const vats = new Set(sample.vats.map((v) => v.toUpperCase()));
  let found = 0;
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    const local = /[A-Za-z0-9._%+-]+$/.exec(text.slice(0, at))?.[0];
    const domain = /^[A-Za-z0-9.-]+\.[A-Za-z]{2,}/.exec(/^[A-Za-z0-9.-]*/.exec(text.slice(at + 1))![0])?.[0];
    if (local && domain && emails.has(`${local}@${domain}`.toLowerCase())) found++;
  }
  for (const m of text.matchAll(/\+?[0-9][0-9 ./()-]{5,}[0-9]/g)) if (phones.has(m[0].replace(/[^0-9]/g, ''))) found++;
  for (const m of text.matchAll(/(?<![A-Za-z])[A-Za-z]{2}[0-9A-Za-z]{8,13}/g)) if (vats.has(m[0].toUpperCase())) found++;
  return found;
}

test('emails, phones and VATs: exactly what the regular expressions find (random text, random chunks)', async () => {
  const tokens = { emails: ['ab@cd.ef', 'A.b-c@x-y.co', 'zz+1@q.qq.qqq'], phones: ['+32 499 12 34 56', '0123456789', '(01) 234.567-89'], vats: ['BE0123456789', 'ab12345678', 'XY1234567890123'] };
  const sample = { ...tokens, emails: tokens.emails.map((e) => e.toUpperCase()) };
  const alphabet = 'ab.-_%+@ /()0123456789,"\nXYZ<>';
  const all = [...tokens.emails, ...tokens.phones, ...tokens.vats];
  let seen = 0;
  for (let round = 0; round < 1500; round++) {
    let text = '';
    const length = Math.floor(Math.random() * 200);
    while (text.length < length) text += Math.random() < 0.15 ? all[Math.floor(Math.random() * all.length)]! : alphabet[Math.floor(Math.random() * alphabet.length)]!;
    const expected = byRegex(sample, text);
    seen += expected;
    const size = 1 + Math.floor(Math.random() * 40);
    const s = new PiiScanner(sample);
    const chunks: Buffer[] = [];
    const buf = Buffer.from(text);
    for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
    await pipeline(Readable.from(chunks), s.stream('t'), new Writable({ write: (_c, _e, cb) => cb() }));
    assert.equal(s.hits.get('t') ?? 0, expected, `${JSON.stringify(text)} in chunks of ${size}`);
    assert.equal(new PiiScanner(sample).scan('t', text), expected, JSON.stringify(text));
  }
  assert.ok(seen > 500, `the random texts hold sampled tokens (${seen})`);
});
