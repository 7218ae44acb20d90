// Replaces the secrets a run knows (the database password it resolved, tokens an executor registered)
// with [redacted] before a log line leaves the worker: the log table and the Realtime broadcast never
// see them. The same pass replaces the worker's own paths (its work and backup directories, the
// registry's filestore roots) with their names, so a run's log and error tell members what, not where.
// Matching is Aho-Corasick over the line, so a run with many secrets costs one pass per line, and
// overlapping or adjacent secrets are covered whole ("[redacted]" once for the joined span).

export const REDACTED = '[redacted]';
/** Shorter values would mangle ordinary text ("1234", "yes") and protect little. */
export const MIN_SECRET_LENGTH = 4;

interface Node {
  next: Map<number, number>;
  fail: number;
  /** Length of the longest secret that ends here (through the fail chain too); 0 if none. */
  out: number;
  /** What replaces that longest match. */
  label: string;
}

export class Redactor {
  /** Pattern → its replacement: REDACTED for secrets, a name for an alias. */
  private readonly secrets = new Map<string, string>();
  private nodes: Node[] | undefined;

  /** Registers a secret; returns true when it is new (and long enough to count). */
  add(secret: string | null | undefined): boolean {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH || this.secrets.get(secret) === REDACTED) return false;
    this.secrets.set(secret, REDACTED);
    this.nodes = undefined; // rebuilt on the next apply
    return true;
  }

  /** Shows `label` in place of `text` (a path of the worker's); a secret of the same text stays [redacted]. */
  alias(text: string, label: string): void {
    if (text.length < MIN_SECRET_LENGTH || this.secrets.has(text)) return;
    this.secrets.set(text, label);
    this.nodes = undefined;
  }

  get size(): number {
    return this.secrets.size;
  }

  apply(line: string): string {
    if (this.secrets.size === 0 || line.length < MIN_SECRET_LENGTH) return line;
    const nodes = (this.nodes ??= build(this.secrets));
    // Spans [start, end) to replace, merged as they come (they arrive ordered by end); labels[k] is span k's.
    const spans: number[] = [];
    const labels: string[] = [];
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
      let label = nodes[state]!.label;
      while (spans.length > 0 && start <= spans[spans.length - 1]!) {
        spans.pop();
        start = Math.min(start, spans.pop()!);
        // Overlapping matches of different kinds: hiding wins over naming.
        const prior = labels.pop()!;
        if (prior !== label) label = REDACTED;
      }
      spans.push(start, end);
      labels.push(label);
    }
    if (spans.length === 0) return line;
    let out = '';
    let from = 0;
    for (let k = 0; k < spans.length; k += 2) {
      out += line.slice(from, spans[k]) + labels[k / 2];
      from = spans[k + 1]!;
    }
    return out + line.slice(from);
  }
}

function build(secrets: Map<string, string>): Node[] {
  const nodes: Node[] = [{ next: new Map(), fail: 0, out: 0, label: REDACTED }];
  for (const [s, label] of secrets) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      let to = nodes[n]!.next.get(c);
      if (to === undefined) {
        to = nodes.length;
        nodes.push({ next: new Map(), fail: 0, out: 0, label: REDACTED });
        nodes[n]!.next.set(c, to);
      }
      n = to;
    }
    nodes[n]!.out = s.length;
    nodes[n]!.label = label;
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
      const failed = nodes[nodes[child]!.fail]!;
      if (failed.out > nodes[child]!.out) {
        nodes[child]!.out = failed.out;
        nodes[child]!.label = failed.label;
      }
      queue.push(child);
    }
  }
  return nodes;
}
