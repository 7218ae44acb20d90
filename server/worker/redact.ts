// Replaces the secrets a run knows (the database password it resolved, tokens an executor registered)
// with [redacted] before a log line leaves the worker: the log table and the Realtime broadcast never
// see them. Matching is Aho-Corasick over the line, so a run with many secrets costs one pass per line,
// and overlapping or adjacent secrets are covered whole ("[redacted]" once for the joined span).
// The worker's own directories (work, backups, the registry's filestore roots) are shown by name
// afterwards: a few absolute paths, looked for with indexOf (a line without them costs next to nothing).

export const REDACTED = '[redacted]';
/** Shorter values would mangle ordinary text ("1234", "yes") and protect little. */
export const MIN_SECRET_LENGTH = 4;

interface Node {
  next: Map<number, number>;
  fail: number;
  /** Length of the longest secret that ends here (through the fail chain too); 0 if none. */
  out: number;
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
      const len = nodes[state]!.out;
      if (len === 0) continue;
      let start = i + 1 - len;
      const end = i + 1;
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
  const nodes: Node[] = [{ next: new Map(), fail: 0, out: 0 }];
  for (const s of secrets) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      let to = nodes[n]!.next.get(c);
      if (to === undefined) {
        to = nodes.length;
        nodes.push({ next: new Map(), fail: 0, out: 0 });
        nodes[n]!.next.set(c, to);
      }
      n = to;
    }
    nodes[n]!.out = Math.max(nodes[n]!.out, s.length);
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
      nodes[child]!.out = Math.max(nodes[child]!.out, nodes[nodes[child]!.fail]!.out);
      queue.push(child);
    }
  }
  return nodes;
}
