// Odoo's log format, as odoo/netsvc.py writes it to a file:
//   2026-12-01 15:00:00,123 1234 INFO db_name odoo.modules.loading: 42 modules loaded
// (time in UTC, as Odoo sets TZ=UTC for itself; pid; level; database or "?"; logger: message). Anything
// else is the continuation of the record before it (a traceback, a multi-line message, what Python
// printed to stderr) and takes that record's level and time, so a level filter keeps a traceback whole.
import type { OdooLogLevel } from '../../contract/index.ts';

const HEADER = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3}) \d+ ([A-Z_]+) /;

/** Odoo's level names (custom ones included: DEBUG_RPC, DEBUG_SQL; 25 is printed INFO) to the contract's. */
function levelOf(name: string): OdooLogLevel {
  if (name.startsWith('DEBUG')) return 'debug';
  if (name === 'WARNING' || name === 'WARN') return 'warning';
  if (name === 'ERROR') return 'error';
  if (name === 'CRITICAL') return 'critical';
  return 'info';
}

export interface ParsedLine {
  ts: string;
  level: OdooLogLevel;
  line: string;
}

/** Reads lines in order, remembering the current record for the continuation lines after it. */
export class OdooLogParser {
  private level: OdooLogLevel = 'info';
  private ts: string | null = null;

  parse(line: string): ParsedLine {
    const m = HEADER.exec(line);
    if (m) {
      this.level = levelOf(m[8]!);
      this.ts = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`;
      return { ts: this.ts, level: this.level, line };
    }
    return { ts: this.ts ?? new Date().toISOString(), level: this.level, line };
  }
}
