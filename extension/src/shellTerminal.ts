// A VS Code terminal on an environment (Open shell / Open psql / Open Odoo shell): a Pseudoterminal whose
// bytes go over the server's shell websocket (client/shell.ts). It imports nothing of vscode at run time
// (its events are plain), so mocha tests it outside VS Code. The terminal closes with the remote process's
// exit code; a refusal or a lost connection is written into it, and it closes on the next key.
import type * as C from '../../contract/index.ts';
import { connectShell, type ShellConnection, type ShellHandlers, type ShellRequest } from '../../client/shell.ts';

type Listener<T> = (e: T) => unknown;
/** The part of vscode.Event a Pseudoterminal needs. */
export interface PlainEvent<T> {
  (listener: Listener<T>): { dispose(): void };
}

class Emitter<T> {
  private listeners = new Set<Listener<T>>();
  readonly event: PlainEvent<T> = (l) => {
    this.listeners.add(l);
    return { dispose: () => this.listeners.delete(l) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
}

export const SHELL_TITLES: Record<C.ShellKind, string> = { shell: 'shell', psql: 'psql', odoo: 'Odoo shell' };

/** The terminal's name and colour: production red, staging and development yellow (as Odoo.sh marks them). */
export function shellTerminalLook(project: string, environment: string, stage: C.Stage, kind: C.ShellKind): { name: string; color: 'terminal.ansiRed' | 'terminal.ansiYellow' } {
  return { name: `OdooOps ${SHELL_TITLES[kind]}: ${project}/${environment}`, color: stage === 'production' ? 'terminal.ansiRed' : 'terminal.ansiYellow' };
}

/** The question asked before a production shell opens (a modal): it names the project and the environment. */
export function productionQuestion(project: string, environment: string, kind: C.ShellKind): { message: string; detail: string; button: string } {
  return {
    message: `Open ${kind === 'shell' ? 'a shell' : kind === 'psql' ? 'psql' : 'an Odoo shell'} on production: ${project} › ${environment}?`,
    detail: 'You will act on the production database and files. The session is recorded for the project\'s admins (who, when, from where, and what you type).',
    button: `Open on ${environment}`,
  };
}

export type Connect = (req: ShellRequest, handlers: ShellHandlers) => ShellConnection;

export interface ShellTerminalOptions {
  url: string;
  token: () => Promise<string>;
  project: string;
  environment: string;
  kind: C.ShellKind;
  confirmProduction?: boolean;
  /** client/shell.ts's connectShell unless a test gives another. */
  connect?: Connect;
}

const dim = (s: string) => `\x1b[2m${s}\x1b[0m`;
const red = (s: string) => `\x1b[31m${s}\x1b[0m`;
const lines = (s: string) => s.replace(/\r?\n/g, '\r\n');

export class ShellTerminal {
  private readonly written = new Emitter<string>();
  private readonly closed = new Emitter<number | void>();
  readonly onDidWrite = this.written.event;
  readonly onDidClose = this.closed.event;
  private conn: ShellConnection | undefined;
  private readonly decoder = new TextDecoder('utf-8');
  /** After a refusal or a lost connection: the next key closes the terminal. */
  private closeOnKey = false;
  /** The person closed the terminal. */
  private done = false;
  /** onDidClose has fired. */
  private finished = false;
  /** The exit code once known (the extension-host tests read it). */
  exitCode: number | undefined;
  /** What the terminal said when the server refused or the connection was lost. */
  failure: string | undefined;
  private readonly opts: ShellTerminalOptions;

  constructor(opts: ShellTerminalOptions) {
    this.opts = opts;
  }

  open(dims: { columns: number; rows: number } | undefined): void {
    const o = this.opts;
    this.written.fire(dim(`Connecting to ${o.project}/${o.environment} (${SHELL_TITLES[o.kind]})…\r\n`));
    void o.token().then((token) => {
      if (this.done) return;
      this.conn = (o.connect ?? connectShell)({
        url: o.url, token, project: o.project, environment: o.environment, kind: o.kind,
        cols: dims?.columns ?? 80, rows: dims?.rows ?? 24, ...(o.confirmProduction ? { confirmProduction: true } : {}),
      }, {
        opened: (info) => this.written.fire(dim(`${info.where} (${info.stage})${info.recorded ? '; recorded, what you type included' : ''}; ends after ${Math.round(info.idleSeconds / 60)} min without input\r\n`)),
        output: (data) => this.written.fire(this.decoder.decode(data, { stream: true })),
        exit: (e) => this.end(e.code ?? 1, e.reason === 'exited' ? undefined : `the session ended: ${e.reason}`),
        error: (e) => this.fail(`${e.message}${e.hint ? `\n${e.hint}` : ''}`),
        dropped: (reason) => this.fail(`The connection to the OdooOps server was lost (${reason}). Whatever ran in this session has been ended; open a new one.`),
      });
    }, (err) => this.fail(`Cannot open the session: ${(err as Error).message}`));
  }

  handleInput(data: string): void {
    if (this.closeOnKey) return this.finish(1);
    this.conn?.write(data);
  }

  setDimensions(dims: { columns: number; rows: number }): void {
    this.conn?.resize(dims.columns, dims.rows);
  }

  /** The person closed the terminal: the session (and everything it runs) ends on the server. */
  close(): void {
    this.done = true;
    this.conn?.close();
  }

  private end(code: number, note?: string): void {
    const rest = this.decoder.decode();
    if (rest) this.written.fire(rest);
    if (note) this.written.fire(dim(`\r\n${note}\r\n`));
    this.finish(code);
  }

  private fail(message: string): void {
    if (this.done || this.finished) return;
    this.failure = message;
    this.closeOnKey = true;
    this.written.fire(`\r\n${red(lines(message))}\r\n${dim('Press any key to close this terminal.')}\r\n`);
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.closeOnKey = false;
    this.exitCode = code;
    this.closed.fire(code);
  }
}
