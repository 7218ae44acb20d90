// Finding sampled multi-word values (person names, street lines) in the bytes a clone receives. A
// phrase matches where its words appear in the text as whole, consecutive words: ASCII letters
// compared case-insensitively, whatever separates the words (spaces, punctuation, a CSV quote, a
// newline). A word is a run of ASCII letters and digits and of non-ASCII bytes (UTF-8 letters); every
// other byte separates. The SQL check (verify.ts) uses the same words.
//
// One Aho–Corasick automaton over bytes for all phrases: each byte costs a table lookup whatever the
// number of phrases, the state carries over chunk boundaries (no carry buffer), and no string is
// made per word. A word-based lookup makes a string per word of every row: only splitting the rows of
// a generated database into words and looking each up in a Set ran at ~80 MiB/s, this automaton with
// 400 phrases at ~250 MiB/s on the same rows (and the email/phone/VAT scan beside it at ~75 MiB/s).
import { MASK_VOCABULARY } from './mask.ts';

/** Phrases shorter than this (after normalization) are not sampled: too common to mean a person. */
export const MIN_PHRASE_CHARS = 7;

// 0: a separator; 1: a word byte no phrase uses; 2..: the bytes the phrases use (A-Z folded to a-z).
const SEP = 0;
const OTHER = 1;
const isWordByte = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b >= 0x80;
const NOT_WORD = /[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+/;

/** A value's words, ASCII-lower-cased, joined by single spaces. */
export function normalizePhrase(v: string): string {
  return v.replace(/[A-Z]+/g, (x) => x.toLowerCase()).split(NOT_WORD).filter(Boolean).join(' ');
}

/**
 * The phrase to look for in place of a sampled value, or null when it is not worth sampling: a single
 * word, too short, or made only of words and hashes the masking itself writes (a fake must never be
 * taken for an original).
 */
export function phraseOf(v: string): string | null {
  const p = normalizePhrase(v);
  const words = p.split(' ');
  if (words.length < 2 || p.length < MIN_PHRASE_CHARS) return null;
  // The masking writes words of its vocabulary, hashes (4 hex digits and more, "u" before an address's)
  // and digits (fake phone numbers).
  if (words.every((w) => MASK_VOCABULARY.has(w) || /^u?[0-9a-f]{4,}$/.test(w) || /^[0-9]+$/.test(w))) return null;
  return p;
}

export interface PhraseCursor {
  /** Row offset (state × classes) in the transition table. */
  state: number;
  /** Whether the last byte fed was a separator (runs of separators count as one). */
  sep: boolean;
  /**
   * Reading CSV (COPY ... format csv): a phrase never spans two fields or two rows (the last word of a
   * value and the first of the next are not a name), so commas and line ends outside quotes end it.
   */
  csv: boolean;
  /** Inside a quoted CSV field (a doubled quote toggles twice, so counting quotes is enough). */
  quoted: boolean;
}

export class PhraseMatcher {
  private readonly cls = new Uint8Array(256);
  private readonly k: number;
  /** Transitions, by row offset: next state's row offset. */
  private readonly delta: Int32Array;
  /** Per state: the kinds (bit i for kinds[i]) of the phrases that end there. */
  private readonly out: Uint8Array;
  private readonly start: number;
  readonly size: number;

  /** Phrases (normalized) with the index (0-7) of their kind. */
  constructor(phrases: { phrase: string; kind: number }[]) {
    const patterns = [...new Map(phrases.map((p) => [p.phrase, p])).values()].map((p) => ({ bytes: Buffer.from(` ${p.phrase} `, 'utf8'), kind: p.kind }));
    this.size = patterns.length;
    let next = 2;
    for (let b = 0; b < 256; b++) this.cls[b] = isWordByte(b) ? OTHER : SEP;
    for (const { bytes } of patterns) {
      for (const b of bytes) {
        if (!isWordByte(b) || this.cls[b] !== OTHER) continue;
        this.cls[b] = next;
        if (b >= 0x61 && b <= 0x7a) this.cls[b - 0x20] = next;
        next++;
      }
    }
    const k = (this.k = next);
    // The trie, then failure links breadth first, folded into a complete transition table.
    const go: number[][] = [new Array(k).fill(-1)];
    const outs: number[] = [0];
    for (const { bytes, kind } of patterns) {
      let s = 0;
      for (const b of bytes) {
        const c = this.cls[b]!;
        if (go[s]![c] === -1) {
          go[s]![c] = go.length;
          go.push(new Array(k).fill(-1));
          outs.push(0);
        }
        s = go[s]![c]!;
      }
      outs[s]! |= 1 << kind;
    }
    const n = go.length;
    const delta = new Int32Array(n * k);
    const fail = new Int32Array(n);
    const queue: number[] = [];
    for (let c = 0; c < k; c++) {
      const t = go[0]![c]!;
      delta[c] = (t === -1 ? 0 : t) * k;
      if (t !== -1) queue.push(t);
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      outs[s]! |= outs[fail[s]!]!;
      for (let c = 0; c < k; c++) {
        const t = go[s]![c]!;
        if (t === -1) {
          delta[s * k + c] = delta[fail[s]! * k + c]!;
        } else {
          fail[t] = delta[fail[s]! * k + c]! / k;
          delta[s * k + c] = t * k;
          queue.push(t);
        }
      }
    }
    this.delta = delta;
    this.out = Uint8Array.from(outs);
    // A stream starts as if after a separator.
    this.start = delta[SEP]!;
  }

  cursor(csv = false): PhraseCursor {
    return { state: this.start, sep: true, csv, quoted: false };
  }

  /**
   * Feeds bytes; calls found(kinds) for each phrase occurrence that ends in them (phrases end with a
   * separator, so an occurrence at the very end is reported by end()). Returns the occurrences.
   */
  feed(cur: PhraseCursor, buf: Uint8Array, found?: (kinds: number) => void): number {
    const { cls, delta, out, k, start } = this;
    const csv = cur.csv;
    let s = cur.state;
    let sep = cur.sep;
    let quoted = cur.quoted;
    let hits = 0;
    for (let i = 0, n = buf.length; i < n; i++) {
      const b = buf[i]!;
      const c = cls[b]!;
      if (c === SEP) {
        let cut = false;
        if (csv) {
          if (b === 0x22) quoted = !quoted;
          else cut = !quoted && (b === 0x2c || b === 0x0a || b === 0x0d);
        }
        if (!sep) {
          sep = true;
          s = delta[s]!;
          const o = out[s / k]!;
          if (o) {
            hits++;
            found?.(o);
          }
        }
        if (cut) s = start;
      } else {
        sep = false;
        s = delta[s + c]!;
        // In the root, inside a word no phrase continues: its other bytes cannot leave the root (every
        // phrase starts after a separator), so they are skipped without the table.
        if (s === 0) while (i + 1 < n && cls[buf[i + 1]!] !== SEP) i++;
      }
    }
    cur.state = s;
    cur.sep = sep;
    cur.quoted = quoted;
    return hits;
  }

  /** The end of a stream counts as a separator. */
  end(cur: PhraseCursor, found?: (kinds: number) => void): number {
    return cur.sep ? 0 : this.feed(cur, SPACE, found);
  }
}

const SPACE = Buffer.from(' ');
