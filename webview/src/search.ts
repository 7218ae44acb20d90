// The viewer's search: a plain string or a regular expression, case-sensitive or not, over the text as
// shown (escapes removed). `test` decides which lines match (a million lines: once per line, so it is
// kept to one call); `ranges` finds where in a drawn line, for highlighting the matches themselves.
import { plainText } from './ansi.ts';

export interface SearchOptions {
  query: string;
  regex: boolean;
  caseSensitive: boolean;
}

export interface Matcher {
  test(line: string): boolean;
  /** [start, end) of every match in the shown text, in order, none empty. */
  ranges(shown: string): Array<[number, number]>;
}

export type Compiled = { matcher: Matcher | null; error?: string };

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** null matcher for an empty query; an error (and no matcher) for a regular expression that does not compile. */
export function compile({ query, regex, caseSensitive }: SearchOptions): Compiled {
  if (!query) return { matcher: null };
  let re: RegExp;
  try {
    re = new RegExp(regex ? query : escapeRe(query), caseSensitive ? 'g' : 'gi');
  } catch (err) {
    return { matcher: null, error: `invalid regular expression: ${(err as SyntaxError).message.replace(/^Invalid regular expression: /, '')}` };
  }
  const ranges = (shown: string): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    re.lastIndex = 0;
    for (let m = re.exec(shown); m; m = re.exec(shown)) {
      if (m[0].length === 0) {
        // An empty match (a* or ^) highlights nothing and must not stop the scan.
        re.lastIndex++;
        continue;
      }
      out.push([m.index, m.index + m[0].length]);
    }
    return out;
  };
  if (!regex && caseSensitive) return { matcher: { test: (line) => plainText(line).includes(query), ranges } };
  // A regular expression with the i flag: faster than lower-casing a million lines (and agrees with `ranges`).
  const once = new RegExp(re.source, caseSensitive ? '' : 'i');
  return { matcher: { test: (line) => once.test(plainText(line)), ranges } };
}
