// Runs an uploaded SQL script (an Odoo zip's dump.sql, or what pg_restore makes of an uploaded
// pg_dump -Fc) without psql: psql executes meta-commands (`\! shell`, `\copy ... program`, `\o |cmd`)
// that would run on the worker, so the script is split into statements here, each checked against what
// pg_dump writes for an Odoo database, and only those are sent, as the environment's own non-superuser
// role (checked by the caller). COPY data goes through COPY FROM STDIN (pg-copy-streams), nothing else.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/** The script holds something OdooOps will not run; the message names it and its line. */
export class UnsafeSql extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeSql';
  }
}

/** What reading a script learnt about the database it makes. */
export interface ScriptFacts {
  statements: number;
  /** GRANT/REVOKE/ALTER DEFAULT PRIVILEGES: privileges are the operator's business, not the import's. */
  skipped: number;
  /** ir_module_module rows: name → { state, latest_version }. */
  modules: Map<string, { state: string; version: string }>;
  /** Tables created (schema-qualified as written). */
  tables: Set<string>;
  /** Rows per COPY'd table. */
  rows: Map<string, number>;
}

// The settings pg_dump's scripts set; SET ROLE / SESSION AUTHORIZATION and anything else are refused.
const SETTINGS = /^SET (STATEMENT_TIMEOUT|LOCK_TIMEOUT|IDLE_IN_TRANSACTION_SESSION_TIMEOUT|TRANSACTION_TIMEOUT|CLIENT_ENCODING|STANDARD_CONFORMING_STRINGS|CHECK_FUNCTION_BODIES|XMLOPTION|CLIENT_MIN_MESSAGES|ROW_SECURITY|DEFAULT_TABLESPACE|DEFAULT_TABLE_ACCESS_METHOD|DEFAULT_WITH_OIDS|SEARCH_PATH) (=|TO) /;
const DDL = [
  /^CREATE (UNLOGGED )?TABLE /, /^CREATE SEQUENCE /, /^CREATE (UNIQUE )?INDEX /, /^CREATE (OR REPLACE )?(RECURSIVE )?VIEW /,
  /^CREATE MATERIALIZED VIEW /, /^CREATE (OR REPLACE )?(CONSTRAINT )?TRIGGER /, /^CREATE (OR REPLACE )?FUNCTION /, /^CREATE TYPE /,
  /^CREATE DOMAIN /, /^CREATE AGGREGATE /, /^CREATE COLLATION /, /^CREATE STATISTICS /, /^CREATE TEXT SEARCH (CONFIGURATION|DICTIONARY) /,
  /^ALTER (TABLE|SEQUENCE|INDEX|VIEW|MATERIALIZED VIEW|FUNCTION|TYPE|TEXT SEARCH CONFIGURATION) /, /^COMMENT ON /,
  /^REFRESH MATERIALIZED VIEW /,
];
// Trusted extensions Odoo can use (--unaccent, trigram indexes); a non-superuser can create only trusted ones anyway.
const EXTENSION = /^CREATE EXTENSION (IF NOT EXISTS )?("?)(UNACCENT|PG_TRGM|BTREE_GIN|BTREE_GIST)\2( WITH SCHEMA ("?)PUBLIC\5)?;$/;
const SETVAL = /^SELECT pg_catalog\.setval\('(?:[^']|'')*', -?\d+, (true|false)\);$/;
const SET_CONFIG = /^SELECT pg_catalog\.set_config\('search_path', '', false\);$/;
const COPY = /^COPY ((?:"(?:[^"]|"")*"|[A-Za-z0-9_$]+)(?:\.(?:"(?:[^"]|"")*"|[A-Za-z0-9_$]+))?) (\((?:"(?:[^"]|"")*"|[^()"])*\) )?FROM stdin;$/i;
const PRIVILEGES = /^(GRANT|REVOKE|ALTER DEFAULT PRIVILEGES) /;

type Verdict = { kind: 'exec' } | { kind: 'skip' } | { kind: 'copy'; table: string; columns: string[] };

const snippet = (s: string) => (s.length > 100 ? `${s.slice(0, 100)}…` : s);

function refuse(what: string, stmt: string, line: number): never {
  throw new UnsafeSql(`the import's SQL ${what} at line ${line} ("${snippet(stmt)}"); OdooOps runs only what pg_dump writes for an Odoo database (tables, sequences, indexes, constraints, views, functions and their data): nothing was imported`);
}

const unquote = (name: string) => (name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name.toLowerCase());

/** Whether a statement (comments removed, whitespace folded) is one OdooOps runs. */
export function classify(stmt: string, line: number): Verdict {
  const s = stmt.trim().replace(/\s+/g, ' ');
  const up = s.toUpperCase();
  if (SETTINGS.test(up) || SETVAL.test(s) || SET_CONFIG.test(s)) return { kind: 'exec' };
  if (PRIVILEGES.test(up)) return { kind: 'skip' };
  if (up.startsWith('CREATE EXTENSION ')) {
    if (EXTENSION.test(up)) return { kind: 'exec' };
    refuse('creates an extension other than unaccent, pg_trgm, btree_gin or btree_gist', s, line);
  }
  const copy = COPY.exec(s);
  if (copy) {
    const cols = copy[2] ? copy[2].slice(1, -2).split(',').map((c) => unquote(c.trim())) : [];
    return { kind: 'copy', table: copy[1]!.split('.').map(unquote).join('.'), columns: cols };
  }
  if (up.startsWith('COPY ')) refuse('has a COPY that is not COPY ... FROM stdin (a program, a server file, or TO)', s, line);
  if (DDL.some((r) => r.test(up))) {
    if (/ OWNER TO /.test(up)) refuse('changes an owner', s, line);
    if (/^CREATE (OR REPLACE )?FUNCTION /.test(up)) {
      const lang = /\bLANGUAGE '?"?([A-Z0-9_]+)/.exec(up)?.[1];
      if (lang && lang !== 'SQL' && lang !== 'PLPGSQL' && lang !== 'INTERNAL') refuse(`creates a function in language ${lang.toLowerCase()}`, s, line);
    }
    return { kind: 'exec' };
  }
  refuse('has a statement OdooOps does not run', s, line);
}

/** One COPY text-format field: \N is NULL, backslash escapes as COPY writes them. */
function copyField(f: string): string | null {
  if (f === '\\N') return null;
  return f.replace(/\\(.)/g, (_m, c: string) => ({ t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', v: '\v' } as Record<string, string>)[c] ?? c);
}

export interface RunScriptOptions {
  /** Where statements run; without it the script is only read and checked. */
  client?: pg.ClientBase;
  signal?: AbortSignal;
  /** Called every few thousand statements or COPY'd rows. */
  progress?: (facts: ScriptFacts) => void;
}

/**
 * Reads a SQL script (UTF-8) statement by statement; each is checked (UnsafeSql on the first one that
 * is not pg_dump's), then run on `client` when given. Meta-commands are refused, except the
 * `\restrict`/`\unrestrict` lines recent pg_dump versions write around a script (skipped).
 */
export async function runScript(input: Readable, opts: RunScriptOptions = {}): Promise<ScriptFacts> {
  const facts: ScriptFacts = { statements: 0, skipped: 0, modules: new Map(), tables: new Set(), rows: new Map() };
  const lines = createInterface({ input, crlfDelay: Infinity });
  type State = 'normal' | 'squote' | 'esquote' | 'dquote' | 'dollar' | 'block';
  let state: State = 'normal';
  let tag = '';
  let depth = 0;
  let buf = '';
  let lineNo = 0;
  let stmtLine = 1;
  // pg_dump ends every script with this comment: without it the file was cut short.
  let complete = false;
  type CopyState = { table: string; columns: string[]; stream: import('node:stream').Writable | null; rows: number; module: { name: number; state: number; version: number } | null };
  // Held in an object: set inside statement(), read in the loop (TypeScript would narrow a plain let to null).
  const st: { copy: CopyState | null } = { copy: null };

  const statement = async (stmt: string) => {
    opts.signal?.throwIfAborted();
    const v = classify(stmt, stmtLine);
    facts.statements++;
    if (v.kind === 'skip') {
      facts.skipped++;
      return;
    }
    const created = /^\s*CREATE (?:UNLOGGED )?TABLE ((?:"(?:[^"]|"")*"|[A-Za-z0-9_$]+)(?:\.(?:"(?:[^"]|"")*"|[A-Za-z0-9_$]+))?)/i.exec(stmt);
    if (created) facts.tables.add(created[1]!.split('.').map(unquote).join('.'));
    if (v.kind === 'copy') {
      const idx = (c: string) => v.columns.indexOf(c);
      const module = /(^|\.)ir_module_module$/.test(v.table) && idx('name') >= 0 && idx('state') >= 0
        ? { name: idx('name'), state: idx('state'), version: idx('latest_version') } : null;
      const stream = opts.client ? opts.client.query(copyFrom(stmt)) : null;
      st.copy = { table: v.table, columns: v.columns, stream, rows: 0, module };
      return;
    }
    if (opts.client) await opts.client.query(stmt);
    if (facts.statements % 2000 === 0) opts.progress?.(facts);
  };

  try {
    for await (const line of lines) {
      lineNo++;
      if (st.copy) {
        const c = st.copy;
        if (line === '\\.') {
          facts.rows.set(c.table, (facts.rows.get(c.table) ?? 0) + c.rows);
          if (c.stream) {
            c.stream.end();
            await finished(c.stream);
          }
          st.copy = null;
          stmtLine = lineNo + 1;
          continue;
        }
        c.rows++;
        if (c.module) {
          const f = line.split('\t');
          const name = copyField(f[c.module.name] ?? '\\N');
          if (name) facts.modules.set(name, { state: copyField(f[c.module.state] ?? '\\N') ?? '', version: c.module.version >= 0 ? copyField(f[c.module.version] ?? '\\N') ?? '' : '' });
        }
        if (c.stream && !c.stream.write(`${line}\n`)) await once(c.stream, 'drain');
        if (c.rows % 50_000 === 0) {
          opts.signal?.throwIfAborted();
          opts.progress?.(facts);
        }
        continue;
      }
      let i = 0;
      let seg = '';
      while (i < line.length) {
        const ch = line[i]!;
        if (state === 'normal') {
          if (ch === '-' && line[i + 1] === '-') {
            if (/^-- PostgreSQL database dump complete\s*$/.test(line.slice(i)) && !(buf + seg).trim()) complete = true;
            break;
          }
          if (ch === '/' && line[i + 1] === '*') {
            state = 'block';
            depth = 1;
            i += 2;
            continue;
          }
          if (ch === '\\') {
            // psql would take the rest of the line as a meta-command.
            if (!(buf + seg).trim() && /^\s*\\(restrict|unrestrict) [A-Za-z0-9]+\s*$/.test(line)) break;
            refuse('has a psql meta-command', line.trim(), lineNo);
          }
          if (ch === "'") {
            const prev = (buf + seg).slice(-2);
            state = /(^|[^A-Za-z0-9_$])[Ee]$/.test(prev) ? 'esquote' : 'squote';
          } else if (ch === '"') state = 'dquote';
          else if (ch === '$') {
            const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(line.slice(i));
            const prev = (buf + seg).slice(-1);
            if (m && !/[A-Za-z0-9_$]/.test(prev)) {
              state = 'dollar';
              tag = m[0];
              seg += tag;
              i += tag.length;
              continue;
            }
          } else if (ch === ';') {
            const stmt = `${buf}${seg};`;
            buf = '';
            seg = '';
            i++;
            await statement(stmt);
            if (st.copy) {
              if (line.slice(i).trim()) refuse('has text after a COPY statement', line, lineNo);
              break;
            }
            if (!stmt.trim()) stmtLine = lineNo;
            continue;
          }
          if (!(buf + seg).trim() && !/\s/.test(ch)) stmtLine = lineNo;
          seg += ch;
          i++;
        } else if (state === 'squote' || state === 'esquote') {
          if (state === 'esquote' && ch === '\\') {
            seg += line.slice(i, i + 2);
            i += 2;
            continue;
          }
          if (ch === "'") {
            if (line[i + 1] === "'") {
              seg += "''";
              i += 2;
              continue;
            }
            state = 'normal';
          }
          seg += ch;
          i++;
        } else if (state === 'dquote') {
          if (ch === '"') {
            if (line[i + 1] === '"') {
              seg += '""';
              i += 2;
              continue;
            }
            state = 'normal';
          }
          seg += ch;
          i++;
        } else if (state === 'dollar') {
          if (ch === '$' && line.startsWith(tag, i)) {
            seg += tag;
            i += tag.length;
            state = 'normal';
            continue;
          }
          seg += ch;
          i++;
        } else {
          if (ch === '/' && line[i + 1] === '*') {
            depth++;
            i += 2;
          } else if (ch === '*' && line[i + 1] === '/') {
            depth--;
            i += 2;
            if (depth === 0) state = 'normal';
          } else i++;
        }
      }
      if (!st.copy) buf += `${seg}\n`;
    }
    if (st.copy) throw new UnsafeSql(`the import's SQL ends inside the data of ${st.copy.table} (no "\\." line): the file is cut short or corrupt; nothing was imported`);
    if (state !== 'normal' || buf.trim()) throw new UnsafeSql(`the import's SQL ends inside a statement (line ${stmtLine}): the file is cut short or corrupt; nothing was imported`);
    if (!complete) throw new UnsafeSql('the import\'s SQL lacks pg_dump\'s closing line ("PostgreSQL database dump complete"): the file is cut short or corrupt; nothing was imported');
  } catch (err) {
    st.copy?.stream?.destroy();
    throw err;
  } finally {
    lines.close();
  }
  return facts;
}

/** Odoo's facts from a script: refuses what is not an initialised Odoo database. */
export function odooFromScript(facts: ScriptFacts): { odooVersion: string; majorVersion: string; modules: Record<string, string> } {
  if (![...facts.tables].some((t) => /(^|\.)ir_module_module$/.test(t))) {
    throw new UnsafeSql('this is not an Odoo database: its dump has no ir_module_module table; export the database from Odoo (Database manager → Backup, or Odoo.sh → Backups → Download)');
  }
  if (![...facts.tables].some((t) => /(^|\.)res_users$/.test(t))) throw new UnsafeSql('this is not an Odoo database: its dump has no res_users table');
  const installed = [...facts.modules].filter(([, m]) => m.state === 'installed' || m.state === 'to upgrade');
  const base = facts.modules.get('base');
  if (!base || (base.state !== 'installed' && base.state !== 'to upgrade')) {
    throw new UnsafeSql('this Odoo database has no installed base module: Odoo was never initialised in it (or the dump lacks the data of ir_module_module)');
  }
  const v = base.version;
  const major = /^(saas~)?\d+\.\d+/.exec(v)?.[0];
  if (!major) throw new UnsafeSql(`the base module's version "${v}" is not an Odoo version`);
  return { odooVersion: v, majorVersion: major, modules: Object.fromEntries(installed.map(([n, m]) => [n, m.version]).sort()) };
}
