// The worker's Redactor on its own: exact, whole, and fast with many secrets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redactor } from '../server/worker/redact.ts';

const redactor = (...secrets: string[]) => {
  const r = new Redactor();
  for (const s of secrets) r.add(s);
  return r;
};

test('replaces every occurrence, leaves the rest of the line alone', () => {
  const r = redactor('hunter22');
  assert.equal(r.apply('password=hunter22 and again hunter22.'), 'password=[redacted] and again [redacted].');
  assert.equal(r.apply('nothing here'), 'nothing here');
  assert.equal(r.apply('hunter2 is not hunter22'), 'hunter2 is not [redacted]');
  assert.equal(r.apply(''), '');
});

test('ignores secrets under 4 characters, empty and missing values, and duplicates', () => {
  const r = new Redactor();
  assert.equal(r.add('abc'), false);
  assert.equal(r.add(''), false);
  assert.equal(r.add(undefined), false);
  assert.equal(r.add(null), false);
  assert.equal(r.add('abcd'), true);
  assert.equal(r.add('abcd'), false);
  assert.equal(r.size, 1);
  // A short secret counts as a whole word only (short-passwords.test.ts has why).
  assert.equal(r.apply('abc abcd abcde'), 'abc [redacted] abcde');
  assert.equal(new Redactor().apply('abcd'), 'abcd');
});

test('overlapping, nested and adjacent secrets are hidden whole', () => {
  // (Secrets of 12 characters or more: they are hidden wherever they appear, inside words too.)
  // One secret a prefix of another: the longer one wins, nothing of it shows.
  assert.equal(redactor('abcdabcdabcd', 'abcdabcdabcdefgh').apply('x abcdabcdabcdefgh y abcdabcdabcd z'), 'x [redacted] y [redacted] z');
  // One inside another.
  assert.equal(redactor('cdefghijklmn', 'abcdefghijklmnop').apply('abcdefghijklmnop'), '[redacted]');
  // Overlapping at their ends: the union goes.
  assert.equal(redactor('hunter22-long', '-longxyz12345').apply('[hunter22-longxyz12345]'), '[[redacted]]');
  // Side by side.
  assert.equal(redactor('a'.repeat(12)).apply(`${'a'.repeat(24)}-${'a'.repeat(12)}`), '[redacted]-[redacted]');
  assert.equal(redactor('abababababab').apply('ababababababab'), '[redacted]');
  // A secret added later rebuilds the matcher.
  const r = redactor('first-secret');
  assert.equal(r.apply('first-secret second-secret'), '[redacted] second-secret');
  r.add('second-secret');
  assert.equal(r.apply('first-secret second-secret'), '[redacted] [redacted]');
});

test('secrets are literal text: regex characters, unicode, surrogate pairs', () => {
  const r = redactor('a.b*c(d)[e]$^', 'pässwörd', '🔑key🔑', 'line\nbreak');
  assert.equal(r.apply('x a.b*c(d)[e]$^ y axbbc(d)[e]$^'), 'x [redacted] y axbbc(d)[e]$^');
  assert.equal(r.apply('pässwörd / passwörd'), '[redacted] / passwörd');
  assert.equal(r.apply('the 🔑key🔑!'), 'the [redacted]!');
  assert.equal(r.apply('a line\nbreak'), 'a [redacted]');
});

test('thousands of secrets stay fast', () => {
  const secrets = Array.from({ length: 5000 }, () => randomBytes(12).toString('base64url'));
  const r = redactor(...secrets);
  const lines = Array.from({ length: 20_000 }, (_, i) => `2026-11-22 12:00:00 INFO odoo.modules.loading: loading ${i} modules... ${i % 100 === 0 ? secrets[i % secrets.length] : 'ok'}`);
  const t0 = performance.now();
  let hidden = 0;
  for (const l of lines) if (r.apply(l).endsWith('[redacted]')) hidden++;
  const ms = performance.now() - t0;
  assert.equal(hidden, 200);
  console.log(`# 20000 lines against 5000 secrets in ${ms.toFixed(0)} ms`);
  assert.ok(ms < 2000, `${ms} ms`);
});

test("the worker's directories are shown by name; a secret inside one stays hidden", () => {
  const r = new Redactor();
  r.alias('/var/lib/odooops/work', '<work>');
  r.alias('/srv/odoo/filestore', '<filestore root main>');
  r.alias('/srv/odoo', '<odoo>');
  r.add('hunter22');
  assert.equal(r.apply('Odoo exited (see /var/lib/odooops/work/odoo/42/odoo.log)'), 'Odoo exited (see <work>/odoo/42/odoo.log)');
  assert.equal(r.apply('switched: /srv/odoo/filestore/acme is its filestore, /srv/odoo/other not'), 'switched: <filestore root main>/acme is its filestore, <odoo>/other not', 'the longest path names it');
  assert.equal(r.apply('/srv/odoo/filestore/hunter22/x'), '<filestore root main>/[redacted]/x');
  assert.equal(r.apply('no path here, password hunter22'), 'no path here, password [redacted]');
  assert.equal(r.apply('a/b'), 'a/b');
});
