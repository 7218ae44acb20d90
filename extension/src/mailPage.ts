// The page of a caught mail's webview: its headers, the HTML in a sandboxed iframe, a text tab and the
// attachments (saved through the extension, never opened). Mail HTML is hostile until proven otherwise:
//  * the iframe has `sandbox` without allow-scripts, allow-same-origin, allow-forms, allow-popups or
//    allow-top-navigation: nothing in it runs, posts, opens or navigates the editor;
//  * its document carries a CSP of its own (default-src 'none', script-src 'none'), on top of the page's
//    (a srcdoc document inherits the page's CSP too): only inline styles, and images from data: (cid:
//    images arrive as data: URIs from the server) until "Load remote images" is clicked, which renders the
//    page again with http(s) images allowed, and nothing else remote ever;
//  * <meta http-equiv> (a refresh to a remote URL, a CSP of the mail's own) and <base> are taken out, and a
//    <base target="_blank"> goes in: a clicked link would need a popup, which the sandbox refuses.
// The page's own script (a nonce) only switches tabs and posts the two messages below. No vscode import:
// it runs in a real browser in the tests.
import type * as C from '../../contract/index.ts';

/** What the page posts to the extension. */
export type MailPageMessage = { type: 'remoteImages' } | { type: 'save'; index: number };

export function parseMailPageMessage(m: unknown): MailPageMessage | null {
  const o = (m ?? {}) as { type?: unknown; index?: unknown };
  if (o.type === 'remoteImages') return { type: 'remoteImages' };
  if (o.type === 'save' && typeof o.index === 'number' && Number.isInteger(o.index) && o.index >= 0 && o.index < 10_000) return { type: 'save', index: o.index };
  return null;
}

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The CSP of the mail's own document. */
export function frameCsp(remoteImages: boolean): string {
  return `default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; form-action 'none'; style-src 'unsafe-inline'; font-src data:; img-src data:${remoteImages ? ' https: http:' : ''}`;
}

/** The mail's HTML as the iframe's document: its CSP first, its meta refreshes and bases gone. */
export function frameDocument(html: string, remoteImages: boolean): string {
  const cleaned = html
    .replace(/<meta\b[^>]*http-equiv[^>]*>/gi, '')
    .replace(/<base\b[^>]*>/gi, '');
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${escapeHtml(frameCsp(remoteImages))}"><base target="_blank"></head><body>${cleaned}</body></html>`;
}

const size = (n: number) => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);

/** Whether the HTML asks for remote images (so the button is worth showing). */
export const hasRemoteImages = (html: string) => /(?:src|background)\s*=\s*["']?\s*(?:https?:)?\/\//i.test(html) || /url\(\s*["']?\s*(?:https?:)?\/\//i.test(html);

export function mailPageHtml(o: { mail: C.CaughtMailDetail; nonce: string; cspSource: string; remoteImages: boolean }): string {
  const m = o.mail;
  const pageCsp = `default-src 'none'; style-src ${o.cspSource} 'unsafe-inline'; script-src 'nonce-${o.nonce}'; frame-src 'self' about: data:; font-src data:; img-src data:${o.remoteImages ? ' https: http:' : ''}`;
  const head = [['From', m.from], ['To', m.to], ['Subject', m.subject], ['Date', m.date ?? '(none)'], ['Received', m.receivedAt]]
    .map(([k, v]) => `<tr><th>${k}</th><td>${escapeHtml(v!)}</td></tr>`).join('');
  const headers = m.headers.map((h) => `<tr><th>${escapeHtml(h.name)}</th><td>${escapeHtml(h.value)}</td></tr>`).join('');
  const files = m.parts.filter((p) => !p.inline);
  const attachments = files.length
    ? `<ul class="files">${files.map((p) => `<li><button class="save" data-index="${p.index}" title="Save to a file">${escapeHtml(p.filename)}</button> <span class="muted">${escapeHtml(p.contentType)}, ${size(p.size)}</span></li>`).join('')}</ul>`
    : '<p class="muted">No attachments</p>';
  const remoteButton = m.html && !o.remoteImages && hasRemoteImages(m.html)
    ? '<p class="notice">Remote images are blocked. <button id="remote">Load remote images</button></p>' : '';
  const html = m.html !== null
    ? `${remoteButton}<iframe id="body" sandbox="" referrerpolicy="no-referrer" title="The mail's HTML (no scripts)" srcdoc="${escapeHtml(frameDocument(m.html, o.remoteImages))}"></iframe>`
    : '<p class="muted">This mail has no HTML part.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(pageCsp)}">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(m.subject || '(no subject)')}</title>
<style>
body { font-family: var(--vscode-font-family, sans-serif); color: var(--vscode-foreground, #222); padding: 0 12px; }
table { border-collapse: collapse; } th { text-align: left; padding: 2px 12px 2px 0; vertical-align: top; color: var(--vscode-descriptionForeground, #666); } td { word-break: break-word; }
nav button { margin-right: 4px; } nav button[aria-selected="true"] { font-weight: bold; }
section[hidden] { display: none; }
iframe { width: 100%; height: 70vh; border: 1px solid var(--vscode-panel-border, #ccc); background: #fff; }
pre { white-space: pre-wrap; word-break: break-word; }
.muted { color: var(--vscode-descriptionForeground, #666); } .notice { background: var(--vscode-inputValidation-infoBackground, #eef); padding: 4px 8px; }
</style></head>
<body>
<table class="summary">${head}</table>
<h3>Attachments</h3>${attachments}
<nav role="tablist"><button role="tab" data-tab="html" aria-selected="true">HTML</button><button role="tab" data-tab="text" aria-selected="false">Text</button><button role="tab" data-tab="headers" aria-selected="false">Headers</button></nav>
<section id="tab-html">${html}</section>
<section id="tab-text" hidden><pre>${escapeHtml(m.text ?? '(no text part)')}</pre></section>
<section id="tab-headers" hidden><table>${headers}</table></section>
<script nonce="${o.nonce}">
(() => {
  const vscode = acquireVsCodeApi();
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => {
    for (const o of document.querySelectorAll('nav button')) o.setAttribute('aria-selected', String(o === b));
    for (const s of document.querySelectorAll('section')) s.hidden = s.id !== 'tab-' + b.dataset.tab;
  });
  document.getElementById('remote')?.addEventListener('click', () => vscode.postMessage({ type: 'remoteImages' }));
  for (const b of document.querySelectorAll('button.save')) b.addEventListener('click', () => vscode.postMessage({ type: 'save', index: Number(b.dataset.index) }));
})();
</script>
</body></html>`;
}
