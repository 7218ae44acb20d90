// Replaces the secrets a run knows (the database password it resolved, tokens an executor registered)
// with [redacted] before a log line leaves the worker: the log table and the Realtime broadcast never
// see them. Matching is Aho-Corasick over the line, so a run with many secrets costs one pass per line,
// and overlapping or adjacent secrets are covered whole ("[redacted]" once for the joined span).
// The worker's own directories (work, backups, the registry's filestore roots) are shown by name
// afterwards: a few absolute paths, looked for with indexOf (a line without them costs next to nothing).
//
// Short secrets: a password like "odoo" is also part of ordinary words ("prod_odooops_mask_6"), and
// hiding it there both mangles the line and tells the reader what the password is. So a secret shorter
// than STRONG_SECRET_LENGTH is hidden only where it stands as a whole word (not touching a letter, digit
// or "_" on a side where it begins or ends with one). The registry refuses database passwords that short
// (server/infra/registry.ts): this rule is for what an executor registers, and keeps logs readable.

export const REDACTED = '[redacted]';
/** Shorter values would mangle ordinary text ("1234", "yes") and protect little. */
export const MIN_SECRET_LENGTH = 4;
/** From this length a secret is hidden wherever it appears; the registry's passwords must be this long. */
export const STRONG_SECRET_LENGTH = 12;

const isWordChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
/** Whether line[start, end) is a whole word where it matters: a side that is a word character must not touch another. */
function standsAlone(line: string, start: number, end: number): boolean {
  if (start > 0 && isWordChar(line.charCodeAt(start)) && isWordChar(line.charCodeAt(start - 1))) return false;
  if (end < line.length && isWordChar(line.charCodeAt(end - 1)) && isWordChar(line.charCodeAt(end))) return false;
  return true;
}

interface Node {
  next: Map<number, number>;
  fail: number;
  /** Lengths of the secrets that end here (through the fail chain too), longest first. */
  out: number[];
}

export class Redactor {
  private readonly secrets = new Set<string>();
  private nodes: Node[] | undefined;
  /** path → the name shown instead, longest first (a root inside another is named as itself). */
  private aliases: [string, string][] = [];

  /** Shows `label` in place of `path` (one of the worker's directories) in every line from now on. */
  alias(path: string, label: string): void {
    if (path.length < MIN_SECRET_LENGTH || this.aliases.some(([p]) => p === path)) return;
    this.aliases = [...this.aliases, [path, label] as [string, string]].sort((a, b) => b[0].length - a[0].length);
  }

  /** Registers a secret; returns true when it is new (and long enough to count). */
  add(secret: string | null | undefined): boolean {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH || this.secrets.has(secret)) return false;
    this.secrets.add(secret);
    this.nodes = undefined; // rebuilt on the next apply
    return true;
  }

  get size(): number {
    return this.secrets.size;
  }

  apply(line: string): string {
    const hidden = this.hide(line);
    if (this.aliases.length === 0 || !hidden.includes('/')) return hidden;
    let out = hidden;
    for (const [path, label] of this.aliases) if (out.includes(path)) out = out.replaceAll(path, label);
    return out;
  }

  private hide(line: string): string {
    if (this.secrets.size === 0 || line.length < MIN_SECRET_LENGTH) return line;
    const nodes = (this.nodes ??= build(this.secrets));
    // Spans [start, end) to hide, merged as they come (they arrive ordered by end).
    const spans: number[] = [];
    let state = 0;
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      let to = nodes[state]!.next.get(c);
      while (to === undefined && state !== 0) {
        state = nodes[state]!.fail;
        to = nodes[state]!.next.get(c);
      }
      state = to ?? 0;
      const outs = nodes[state]!.out;
      if (outs.length === 0) continue;
      const end = i + 1;
      // The longest secret ending here that counts here: a long one anywhere, a short one as a word.
      const len = outs.find((l) => l >= STRONG_SECRET_LENGTH || standsAlone(line, end - l, end));
      if (len === undefined) continue;
      let start = end - len;
      while (spans.length > 0 && start <= spans[spans.length - 1]!) {
        spans.pop();
        start = Math.min(start, spans.pop()!);
      }
      spans.push(start, end);
    }
    if (spans.length === 0) return line;
    let out = '';
    let from = 0;
    for (let k = 0; k < spans.length; k += 2) {
      out += line.slice(from, spans[k]) + REDACTED;
      from = spans[k + 1]!;
    }
    return out + line.slice(from);
  }
}

function build(secrets: Iterable<string>): Node[] {
  const nodes: Node[] = [{ next: new Map(), fail: 0, out: [] }];
  for (const s of secrets) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      let to = nodes[n]!.next.get(c);
      if (to === undefined) {
        to = nodes.length;
        nodes.push({ next: new Map(), fail: 0, out: [] });
        nodes[n]!.next.set(c, to);
      }
      n = to;
    }
    nodes[n]!.out = [s.length];
  }
  // Breadth first: a node's fail link points to a shallower node, already complete.
  const queue: number[] = [...nodes[0]!.next.values()];
  for (let q = 0; q < queue.length; q++) {
    const n = queue[q]!;
    for (const [c, child] of nodes[n]!.next) {
      let f = nodes[n]!.fail;
      while (f !== 0 && !nodes[f]!.next.has(c)) f = nodes[f]!.fail;
      const target = nodes[f]!.next.get(c);
      nodes[child]!.fail = target !== undefined && target !== child ? target : 0;
      // A node's own secret is longer than any reached through its fail link (a proper suffix).
      nodes[child]!.out = [...nodes[child]!.out, ...nodes[nodes[child]!.fail]!.out];
      queue.push(child);
    }
  }
  return nodes;
}
