// The mail catcher in the extension: the lists behind the tree's "Mail (N)" nodes (read once, read
// again when a mail arrives, errors kept), the tree's texts, the messages the mail page may post, and the
// page's own defences as markup (the browser test renders it: test/mail-view-browser.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { MailBox, mailItemText, mailKey, mailNodeLabel, MAILS_LISTED } from '../../src/mailBox.ts';
import { frameCsp, frameDocument, hasRemoteImages, mailPageHtml, parseMailPageMessage } from '../../src/mailPage.ts';

const mail = (id: number, subject: string, at = '2026-12-01T10:00:00.000Z'): C.CaughtMail => ({
  id, from: 'Ventes <ventes@brasserie.example>', to: 'client@klant-mail.example', subject, date: at, receivedAt: at, size: 1200, attachments: 1,
});
const list = (...mails: C.CaughtMail[]): C.CaughtMailList => ({ environment: 'staging', total: mails.length, mails });

/** A stand-in for the HTTP API (the real one is exercised by test/mail-catcher.test.ts): answers by path, in turn. */
function api(answers: Record<string, (C.CaughtMailList | Error)[]>) {
  const asked: string[] = [];
  return {
    asked,
    get: async <T>(path: string, schema: { parse(v: unknown): T }) => {
      asked.push(path);
      const next = answers[path]?.shift();
      if (!next) throw new Error(`no answer for ${path}`);
      if (next instanceof Error) throw next;
      return schema.parse(next);
    },
  };
}

const PATH = `/api/projects/acme/environments/staging/mails?limit=${MAILS_LISTED}`;

describe('mail catcher lists', () => {
  it('reads an environment once for concurrent asks, and names its node when done', async () => {
    const a = api({ [PATH]: [list(mail(2, 'Facture'), mail(1, 'Bienvenue'))] });
    const box = new MailBox(() => a);
    const fired: string[][] = [];
    box.onDidChange((k) => fired.push(k));
    assert.equal(mailNodeLabel(box.list('acme', 'staging')), 'Mail');
    const [x, y] = await Promise.all([box.load('acme', 'staging'), box.load('acme', 'staging')]);
    assert.equal(x, y);
    assert.equal(a.asked.length, 1);
    assert.deepEqual(fired, [[mailKey('acme', 'staging')]]);
    assert.equal(mailNodeLabel(box.list('acme', 'staging')), 'Mail (2)');
  });

  it('reads again when a mail arrives for a list already read, not for one never looked at', async () => {
    const a = api({ [PATH]: [list(mail(1, 'Bienvenue')), list(mail(2, 'Facture'), mail(1, 'Bienvenue'))] });
    const box = new MailBox(() => a);
    box.arrived('acme', 'staging');
    assert.equal(a.asked.length, 0, 'never drawn: nothing read');
    await box.load('acme', 'staging');
    const changed = new Promise<string[]>((r) => box.onDidChange(r));
    box.arrived('acme', 'staging');
    box.arrived('acme', undefined);
    assert.deepEqual(await changed, [mailKey('acme', 'staging')]);
    assert.equal(a.asked.length, 2);
    assert.equal(box.list('acme', 'staging')!.total, 2);
  });

  it('keeps the error of a refused read (a viewer, a lost connection) and forgets everything on reset', async () => {
    const a = api({ [PATH]: [new Error('your role in acme (viewer) cannot read the mail of staging environments')] });
    const box = new MailBox(() => a);
    await assert.rejects(box.load('acme', 'staging'), /viewer/);
    assert.match(box.error('acme', 'staging')!, /viewer/);
    assert.equal(box.list('acme', 'staging'), undefined);
    box.reset();
    assert.equal(box.error('acme', 'staging'), undefined);
  });

  it('shows a mail by subject, sender and age, whatever its subject holds', () => {
    const t = mailItemText({ ...mail(3, '  Votre\r\ncommande  '), receivedAt: '2026-12-01T10:00:00.000Z' }, Date.parse('2026-12-01T10:05:00.000Z'));
    assert.equal(t.label, 'Votre commande');
    assert.equal(t.description, 'Ventes <ventes@brasserie.example> · 5 min ago');
    assert.equal(mailItemText(mail(4, '')).label, '(no subject)');
  });
});

describe('mail page', () => {
  const hostile = `<meta http-equiv="refresh" content="0;url=http://tracker.example/r"><base href="http://tracker.example/">
<script>document.title='pwned'</script><img src=x onerror="alert(1)"><img src="https://tracker.example/p.png">`;
  const detail: C.CaughtMailDetail = {
    ...mail(5, 'Facture <b>'), envelopeFrom: 'a@b.example', envelopeTo: ['c@d.example'], headers: [{ name: 'X-Evil', value: '<script>x</script>' }],
    text: 'Bonjour <b>', html: hostile,
    parts: [{ index: 0, filename: 'x', contentType: 'text/html', size: 25, inline: false }, { index: 1, filename: 'logo.png', contentType: 'image/png', size: 90, inline: true }],
  };

  it('accepts only the two messages it posts', () => {
    assert.deepEqual(parseMailPageMessage({ type: 'remoteImages' }), { type: 'remoteImages' });
    assert.deepEqual(parseMailPageMessage({ type: 'save', index: 0 }), { type: 'save', index: 0 });
    for (const bad of [null, 'save', { type: 'save', index: -1 }, { type: 'save', index: '0' }, { type: 'save', index: 1.5 }, { type: 'open', url: 'https://x' }]) {
      assert.equal(parseMailPageMessage(bad), null, JSON.stringify(bad));
    }
  });

  it('gives the mail document no scripts and no remote images until asked, and no refresh or base of its own', () => {
    const doc = frameDocument(hostile, false);
    assert.ok(!/http-equiv="refresh"/i.test(doc));
    assert.ok(!/<base href/i.test(doc));
    assert.match(doc, /<base target="_blank">/);
    assert.match(frameCsp(false), /script-src 'none'/);
    assert.match(frameCsp(false), /img-src data:$/);
    assert.match(frameCsp(true), /img-src data: https: http:$/);
    assert.ok(hasRemoteImages(hostile));
    assert.ok(!hasRemoteImages('<img src="data:image/png;base64,AAAA">'));
  });

  it('puts the HTML only in a sandboxed srcdoc, escapes every text, and lists only real attachments', () => {
    const page = mailPageHtml({ mail: detail, nonce: 'n0nce', cspSource: 'vscode-resource:', remoteImages: false });
    assert.equal(page.match(/<script/g)!.length, 1, 'one script: the page\'s own');
    assert.match(page, /<script nonce="n0nce">/);
    assert.match(page, /<iframe id="body" sandbox="" /);
    assert.ok(!/allow-scripts|allow-same-origin/.test(page));
    assert.match(page, /Facture &lt;b&gt;/);
    assert.match(page, /Load remote images/);
    assert.match(page, /img-src data:"/, 'the page\'s CSP: no remote images');
    assert.match(page, /data-index="0"/);
    assert.ok(!/data-index="1"/.test(page), 'an inline image is part of the HTML, not a file to save');
    const shown = mailPageHtml({ mail: detail, nonce: 'n0nce', cspSource: 'vscode-resource:', remoteImages: true });
    assert.ok(!/Load remote images/.test(shown));
    assert.match(shown, /img-src data: https: http:"/);
  });
});
