// ANSI SGR codes in log lines → styled segments: bold, italic, underline, and foreground/background
// colours: the 16 theme colours (VS Code's terminal palette), the 256-colour palette (38;5;n / 48;5;n) and
// true colour (38;2;r;g;b / 48;2;r;g;b). Every other escape is dropped. Segments are text; the viewer puts
// them in textContent, never innerHTML, and colours are numbers or #rrggbb built here, never log text.
export interface Segment {
  text: string;
  /** 0-15: the theme's ANSI colour (class fgN/bgN); 16-255 and true colour: '#rrggbb'. */
  fg?: number | string;
  bg?: number | string;
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
}

const SGR = /\x1b\[([0-9;:]*)m/g;
// Other CSI sequences (cursor moves, erase) and OSC titles: removed.
const OTHER = /\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b\][^\x07]*\x07/g;
const ALL = /\x1b\[[0-9;:?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;

/** The line as shown: every escape removed. */
export function plainText(line: string): string {
  return line.includes('\x1b') ? line.replace(ALL, '') : line;
}

const hex = (n: number) => Math.max(0, Math.min(255, n | 0)).toString(16).padStart(2, '0');
const CUBE = [0, 95, 135, 175, 215, 255];

/** A 256-colour palette index: 0-15 stay theme colours, 16-231 the 6×6×6 cube, 232-255 the greys. */
export function palette256(n: number): number | string | undefined {
  if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
  if (n < 16) return n;
  if (n < 232) {
    const c = n - 16;
    return `#${hex(CUBE[Math.floor(c / 36)]!)}${hex(CUBE[Math.floor(c / 6) % 6]!)}${hex(CUBE[c % 6]!)}`;
  }
  const g = 8 + (n - 232) * 10;
  return `#${hex(g)}${hex(g)}${hex(g)}`;
}

export function parseAnsi(line: string): Segment[] {
  if (!line.includes('\x1b')) return line ? [{ text: line }] : [];
  const text = line.replace(OTHER, '');
  const out: Segment[] = [];
  let style: Omit<Segment, 'text'> = {};
  let at = 0;
  for (const m of text.matchAll(SGR)) {
    if (m.index! > at) out.push({ text: text.slice(at, m.index), ...style });
    at = m.index! + m[0].length;
    // "38:5:208" (colon form) reads as "38;5;208".
    const codes = m[1] === '' ? [0] : m[1]!.split(/[;:]/).map((c) => (c === '' ? 0 : Number(c)));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]!;
      if (c === 0) style = {};
      else if (c === 1) style = { ...style, bold: true };
      else if (c === 3) style = { ...style, italic: true };
      else if (c === 4) style = { ...style, underline: true };
      else if (c === 22) style = { ...style, bold: false };
      else if (c === 23) style = { ...style, italic: false };
      else if (c === 24) style = { ...style, underline: false };
      else if (c >= 30 && c <= 37) style = { ...style, fg: c - 30 };
      else if (c >= 90 && c <= 97) style = { ...style, fg: c - 90 + 8 };
      else if (c === 39) style = { ...style, fg: undefined };
      else if (c >= 40 && c <= 47) style = { ...style, bg: c - 40 };
      else if (c >= 100 && c <= 107) style = { ...style, bg: c - 100 + 8 };
      else if (c === 49) style = { ...style, bg: undefined };
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        const colour = palette256(codes[i + 2]!);
        style = { ...style, [c === 38 ? 'fg' : 'bg']: colour };
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        const [r, g, b] = [codes[i + 2], codes[i + 3], codes[i + 4]];
        const valid = [r, g, b].every((v) => Number.isInteger(v) && v! >= 0 && v! <= 255);
        style = { ...style, [c === 38 ? 'fg' : 'bg']: valid ? `#${hex(r!)}${hex(g!)}${hex(b!)}` : undefined };
        i += 4;
      }
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
