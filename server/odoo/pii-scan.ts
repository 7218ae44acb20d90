// Scanning rows for sampled personal values while they stream from production into the clone: every
// byte that lands in the clone passes through here, so the check costs no second pass over the
// database. Tokens that look like an email, a phone number or a VAT number are pulled out of the text,
// normalized (emails lower-cased, phones reduced to digits, VATs upper-cased) and looked up in the
// sample; person names and street lines are found as phrases (phrase-scan.ts). The same tokens,
// phrases and normalization as the SQL check in verify.ts, which names the columns of a table found here.
import { Transform } from 'node:stream';
import { PhraseMatcher, phraseOf } from './phrase-scan.ts';

export interface PiiSample {
  emails: string[];
  phones: string[];
  vats: string[];
  /** Names of persons (two words or more). */
  names?: string[];
  /** Street lines (street, street2). */
  streets?: string[];
}

/** The phrases of a sample, normalized, with their kind (the SQL check and the stream share them). */
export function samplePhrases(sample: PiiSample): { kind: 'name' | 'street'; phrase: string }[] {
  const out: { kind: 'name' | 'street'; phrase: string }[] = [];
  for (const [kind, list] of [['name', sample.names ?? []], ['street', sample.streets ?? []]] as const) {
    for (const v of list) {
      const phrase = phraseOf(v);
      if (phrase) out.push({ kind, phrase });
    }
  }
  return out;
}

export const normalizePii = {
  email: (v: string) => v.toLowerCase(),
  phone: (v: string) => v.replace(/[^0-9]/g, ''),
  vat: (v: string) => v.toUpperCase(),
};

// Character classes of the email token, as lookup tables (a regex over every byte is 40x slower than
// finding the rare "@" and growing the token around it).
const LOCAL = new Uint8Array(256);
const DOMAIN = new Uint8Array(256);
for (const ch of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-') LOCAL[ch.charCodeAt(0)] = DOMAIN[ch.charCodeAt(0)] = 1;
for (const ch of '_%+') LOCAL[ch.charCodeAt(0)] = 1;
// Every character any token can contain: text is only cut elsewhere.
const IN_TOKEN = new Uint8Array(256);
for (const ch of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_%+@ /()') IN_TOKEN[ch.charCodeAt(0)] = 1;
const DOMAIN_END = /^[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;
const PHONE = /\+?[0-9][0-9 ./()-]{5,}[0-9]/g;
// Not preceded by a letter: a token starts where a word does (what the SQL regex's leftmost match does too).
const VAT = /(?<![A-Za-z])[A-Za-z]{2}[0-9A-Za-z]{8,13}/g;

export class PiiScanner {
  private readonly emails: Set<string>;
  private readonly phones: Set<string>;
  private readonly vats: Set<string>;
  private readonly phrases: PhraseMatcher | null;
  /** Table → how many sampled values were found in its rows. */
  readonly hits = new Map<string, number>();
  bytes = 0;

  constructor(sample: PiiSample) {
    const set = (list: string[], n: (v: string) => string) => new Set(list.map(n).filter((v) => v.length >= 5));
    this.emails = set(sample.emails, normalizePii.email);
    this.phones = set(sample.phones, normalizePii.phone);
    this.vats = set(sample.vats, normalizePii.vat);
    const phrases = samplePhrases(sample);
    this.phrases = phrases.length ? new PhraseMatcher(phrases.map((p) => ({ phrase: p.phrase, kind: p.kind === 'name' ? 0 : 1 }))) : null;
  }

  private count(table: string, found: number): number {
    if (found) this.hits.set(table, (this.hits.get(table) ?? 0) + found);
    return found;
  }

  /** Counts the sampled values in a whole piece of text (latin1-decoded: its bytes, one per character). */
  scan(table: string, s: string): number {
    let found = this.tokens(s);
    if (this.phrases) {
      const cur = this.phrases.cursor();
      found += this.phrases.feed(cur, Buffer.from(s, 'latin1')) + this.phrases.end(cur);
    }
    return this.count(table, found);
  }

  /** Emails, phones and VATs in a piece of text cut between tokens. */
  private tokens(s: string): number {
    let found = 0;
    if (this.emails.size) {
      for (let at = s.indexOf('@'); at >= 0; at = s.indexOf('@', at + 1)) {
        let a = at;
        while (a > 0 && LOCAL[s.charCodeAt(a - 1)]) a--;
        let b = at + 1;
        while (b < s.length && DOMAIN[s.charCodeAt(b)]) b++;
        if (a === at) continue;
        const domain = DOMAIN_END.exec(s.slice(at + 1, b));
        if (domain && this.emails.has(normalizePii.email(s.slice(a, at + 1) + domain[0]))) found++;
      }
    }
    if (this.phones.size) {
      PHONE.lastIndex = 0;
      for (let m = PHONE.exec(s); m; m = PHONE.exec(s)) if (this.phones.has(normalizePii.phone(m[0]))) found++;
    }
    if (this.vats.size) {
      VAT.lastIndex = 0;
      for (let m = VAT.exec(s); m; m = VAT.exec(s)) if (this.vats.has(normalizePii.vat(m[0]))) found++;
    }
    return found;
  }

  /**
   * A pass-through stream for one table's COPY data (CSV) that scans what flows by. Text is cut after
   * the last character of a chunk that no token contains (CSV's commas, quotes, newlines...); the rest
   * waits for the next chunk.
   */
  stream(table: string): Transform {
    let carry = '';
    const phrases = this.phrases;
    const cur = phrases?.cursor(true);
    return new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.bytes += chunk.length;
        // Phrases: the automaton's state carries over chunk boundaries, so it reads the raw bytes.
        if (phrases) this.count(table, phrases.feed(cur!, chunk));
        const s = carry + chunk.toString('latin1');
        // Only the new chunk is searched for a cut (the carry has none).
        let cut = s.length;
        while (cut > carry.length && IN_TOKEN[s.charCodeAt(cut - 1)]) cut--;
        if (cut === carry.length) {
          cut = 0;
          // A megabyte of token characters (prose without commas or quotes): cut at a space or slash,
          // which only a phone number could straddle, rather than carry on without bound.
          if (s.length > 1 << 20) cut = Math.max(s.lastIndexOf(' '), s.lastIndexOf('/'), s.lastIndexOf('(')) + 1 || s.length;
        }
        this.count(table, this.tokens(s.slice(0, cut)));
        carry = s.slice(cut);
        done(null, chunk);
      },
      flush: (done) => {
        if (carry) this.count(table, this.tokens(carry));
        if (phrases) this.count(table, phrases.end(cur!));
        done();
      },
    });
  }
}
