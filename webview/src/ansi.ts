// ANSI SGR colour codes in log lines → styled segments. Only colours and bold: every other escape is
// dropped. Segments are text; the viewer puts them in textContent, never innerHTML.
export interface Segment {
  text: string;
  fg?: number;
  bg?: number;
  bold?: boolean;
}

const SGR = /\x1b\[([0-9;]*)m/g;
// Other CSI sequences (cursor moves, erase) and OSC titles: removed.
const OTHER = /\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b\][^\x07]*\x07/g;

export function parseAnsi(line: string): Segment[] {
  const text = line.replace(OTHER, '');
  const out: Segment[] = [];
  let style: Omit<Segment, 'text'> = {};
  let at = 0;
  for (const m of text.matchAll(SGR)) {
    if (m.index! > at) out.push({ text: text.slice(at, m.index), ...style });
    at = m.index! + m[0].length;
    const codes = m[1] === '' ? [0] : m[1]!.split(';').map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]!;
      if (c === 0) style = {};
      else if (c === 1) style = { ...style, bold: true };
      else if (c === 22) style = { ...style, bold: false };
      else if (c >= 30 && c <= 37) style = { ...style, fg: c - 30 };
      else if (c >= 90 && c <= 97) style = { ...style, fg: c - 90 + 8 };
      else if (c === 39) style = { ...style, fg: undefined };
      else if (c >= 40 && c <= 47) style = { ...style, bg: c - 40 };
      else if (c >= 100 && c <= 107) style = { ...style, bg: c - 100 + 8 };
      else if (c === 49) style = { ...style, bg: undefined };
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) i += 2; // 256 colours: not mapped
      else if ((c === 38 || c === 48) && codes[i + 1] === 2) i += 4; // true colour: not mapped
    }
  }
  if (at < text.length) out.push({ text: text.slice(at), ...style });
  return out.filter((s) => s.text.length > 0);
}

/** The line's level as Odoo logs it ("2026-11-25 10:00:00,123 42 ERROR db odoo.x: …"), for highlighting. */
export function levelOf(line: string): 'error' | 'warning' | 'info' | 'debug' | null {
  // Escapes first: "\x1b[31mERROR" is an ERROR line.
  const head = line.includes('\x1b') ? line.slice(0, 400).replace(OTHER, '').replace(SGR, '') : line;
  const m = /\b(CRITICAL|ERROR|WARNING|WARN|INFO|DEBUG)\b/.exec(head.slice(0, 200));
  if (!m) return /^Traceback \(most recent call last\)/.test(line) ? 'error' : null;
  return ({ CRITICAL: 'error', ERROR: 'error', WARNING: 'warning', WARN: 'warning', INFO: 'info', DEBUG: 'debug' } as const)[m[1] as 'ERROR'];
}
