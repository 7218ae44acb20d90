// Links in a log line's text (escapes removed): web addresses (http and https only) and `path:line`
// references to files, which the host looks up in the workspace as it does traceback paths. The viewer
// makes them <a href="#"> whose click posts a message; the address is never an href, and the host checks
// it again (a webview's messages are input like any other).
export type Link =
  | { start: number; end: number; kind: 'url'; url: string }
  | { start: number; end: number; kind: 'file'; path: string; line: number };

// Up to a space, a quote, angle brackets or a backtick; trailing punctuation is trimmed below.
const URL_RE = /\bhttps?:\/\/[^\s"'<>`\\]+/gi;
// dir/file.ext:12 or file.py:12(:col): a relative or absolute path with an extension, then a line number.
const FILE_RE = /(?<![\w/.:-])((?:\/|\.\.?\/)?(?:[\w@+-][\w.@+-]*\/)*[\w@+-][\w.@+-]*\.([A-Za-z][A-Za-z0-9]{0,9})):(\d{1,7})(?::\d{1,5})?(?![\w/])/g;
// A cheap first look: ".ext:<digit>" somewhere (most log lines have a colon, few a file reference).
const MAYBE_FILE = /\.[A-Za-z][A-Za-z0-9]{0,9}:\d/;
// Without a folder, only names that are plainly source files: "db.example.com:5432" is no file.
const SOURCE = new Set(['py', 'js', 'mjs', 'cjs', 'ts', 'tsx', 'jsx', 'xml', 'csv', 'po', 'pot', 'json', 'yml', 'yaml', 'cfg', 'conf', 'ini', 'sql', 'sh', 'html', 'css', 'scss', 'less', 'rst', 'md', 'toml', 'txt']);

/** Trailing characters that end a sentence rather than an address; a ")" stays when the address opened one. */
function trimUrl(url: string): string {
  let end = url.length;
  for (;;) {
    const ch = url[end - 1]!;
    if ('.,;:!?\'"'.includes(ch)) end--;
    else if (ch === ')' && count(url.slice(0, end), '(') < count(url.slice(0, end), ')')) end--;
    else if (ch === ']' && count(url.slice(0, end), '[') < count(url.slice(0, end), ']')) end--;
    else break;
  }
  return url.slice(0, end);
}
const count = (s: string, ch: string) => s.split(ch).length - 1;

export function findLinks(text: string): Link[] {
  const out: Link[] = [];
  const hasUrl = text.includes('://');
  if (hasUrl) {
    for (const m of text.matchAll(URL_RE)) {
      const url = trimUrl(m[0]);
      if (url.length > 'https://'.length) out.push({ start: m.index!, end: m.index! + url.length, kind: 'url', url });
    }
  }
  if (text.includes(':') && MAYBE_FILE.test(text)) {
    for (const m of text.matchAll(FILE_RE)) {
      const path = m[1]!;
      if (!path.includes('/') && !SOURCE.has(m[2]!.toLowerCase())) continue;
      const start = m.index!;
      const end = start + m[0].length;
      if (hasUrl && out.some((l) => l.kind === 'url' && start < l.end && end > l.start)) continue;
      out.push({ start, end, kind: 'file', path, line: Number(m[3]) });
    }
    if (hasUrl) out.sort((a, b) => a.start - b.start);
  }
  return out;
}

/** An address the host may open outside VS Code: http or https only, else null. */
export function safeExternalUrl(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 4096) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
}

/**
 * A path from the log the host may look for in the workspace (as the tail of a glob): plain path
 * characters only (no glob metacharacters * ? [ ] { }, no "..", no backslash or scheme), else null.
 */
export function safeLogPath(value: unknown): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024) return null;
  if (!/^[\p{L}\p{N}_./@+ ~,()=-]+$/u.test(value)) return null;
  if (value.split('/').some((p) => p === '..')) return null;
  return value;
}
