// JSON and URL text from outside, checked before it is parsed further or reaches the database.
// JSON.parse itself is iterative, but what runs after it (zod, JSON.stringify, pg's serializers) recurses:
// 10,000 nested arrays overflow their stack. And PostgreSQL's text and jsonb cannot hold U+0000, so a NUL
// in any string or key would fail there as an internal error instead of as the caller's mistake.
import { HttpError } from './errors.ts';

/**
 * The deepest body the contract accepts is 7 levels (run params with a masking profile: body, params,
 * profile, columns, a rule, its where, its value list). 64 leaves custom executors' params plenty of room
 * and keeps the recursive code after the parse far from the stack's limit (System.Text.Json's default).
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22, BACKSLASH = 0x5c, U = 0x75, OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d, OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d;

/**
 * One pass over the text, without parsing it and without recursion: whether it nests deeper than
 * maxDepth (brackets inside strings do not count), and whether a string or key holds a NUL (in JSON
 * only as the escape \u0000; a raw one is malformed JSON and left to the parser to say so).
 */
export function scanJson(text: string, maxDepth = MAX_JSON_DEPTH): { tooDeep: boolean; nul: boolean } {
  let depth = 0;
  let nul = false;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === BACKSLASH) {
        // \u0000 is the only spelling of NUL; whatever follows a backslash is never the closing quote.
        if (text.charCodeAt(i + 1) === U && text.startsWith('0000', i + 2)) nul = true;
        i++;
      } else if (ch === QUOTE) {
        inString = false;
      }
    } else if (ch === QUOTE) {
      inString = true;
    } else if (ch === OPEN_ARRAY || ch === OPEN_OBJECT) {
      if (++depth > maxDepth) return { tooDeep: true, nul };
    } else if (ch === CLOSE_ARRAY || ch === CLOSE_OBJECT) {
      depth--;
    }
  }
  return { tooDeep: false, nul };
}

/** What holds the first NUL, named as zod names paths (params.note, items.3); the depth is bounded already. */
function findNul(value: unknown, path: string[] = []): string | undefined {
  const where = path.length ? path.join('.') : '(the body)';
  if (typeof value === 'string') return value.includes('\0') ? `${where}:` : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, v] of Object.entries(value)) {
    if (key.includes('\0')) return `${where}: a key`;
    const found = findNul(v, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

/** Parses JSON from outside, refusing too deep nesting and NUL characters with a 400 that says which. */
export function parseJsonInput(text: string, malformed: (reason: string) => HttpError): unknown {
  const scan = scanJson(text);
  if (scan.tooDeep) {
    throw new HttpError(400, 'invalid_request', `the JSON nests deeper than ${MAX_JSON_DEPTH} levels; no request needs that many: send a flatter body`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw malformed((err as Error).message);
  }
  const where = scan.nul ? findNul(value) : undefined;
  if (where) {
    throw new HttpError(400, 'invalid_request', `${where} contains a NUL character (\\u0000), which OdooOps cannot store; remove it`);
  }
  return value;
}

/** Path parameters and query values (already %-decoded): a NUL (%00) is refused like one in a body. */
export function refuseNul(what: string, values: Iterable<[string, string]>): void {
  for (const [name, value] of values) {
    if (name.includes('\0')) throw new HttpError(400, 'invalid_request', `a ${what} name contains a NUL character (%00); remove it`);
    if (value.includes('\0')) throw new HttpError(400, 'invalid_request', `${what} ${name}: contains a NUL character (%00); remove it`);
  }
}

/**
 * Whether a Content-Type names JSON: application/json in any case, with parameters; a charset other
 * than UTF-8 is refused (JSON is UTF-8, RFC 8259, and the body is decoded as such). Returns what is
 * wrong, or undefined.
 */
export function jsonMediaTypeProblem(header: string | undefined): string | undefined {
  const [essence = '', ...params] = (header ?? '').split(';');
  if (essence.trim().toLowerCase() !== 'application/json') {
    return `send the body as JSON with Content-Type: application/json${header ? `, not ${JSON.stringify(header.slice(0, 100))}` : ''}`;
  }
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') return `send JSON as UTF-8 (Content-Type: application/json; charset=utf-8), not charset=${charset.slice(0, 40)}`;
  }
  return undefined;
}
