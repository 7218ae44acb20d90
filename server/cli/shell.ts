// odooops env shell: a terminal on an environment (bash in its checkout, psql, or odoo-bin shell) through
// the server's websocket. On a terminal: raw mode (keys go to the remote side as typed: Ctrl-C interrupts
// there, not here), the size follows the window (SIGWINCH), and the command exits with the remote
// process's exit code. Without a terminal, standard input is sent as it comes and its end is a Ctrl-D.
import type { ShellKind } from '../../contract/index.ts';
import { CliError, EXIT, type ApiClient } from '../../client/api-client.ts';
import { connectShell } from '../../client/shell.ts';

export interface ShellCliOptions {
  api: ApiClient;
  project: string;
  environment: string;
  kind: ShellKind;
  yesProduction: boolean;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

export async function shellCommand(o: ShellCliOptions): Promise<number> {
  const stdin = o.stdin ?? process.stdin;
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const tty = Boolean(stdin.isTTY && stdout.isTTY);
  const size = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
  const token = await o.api.bearer();
  const note = (m: string) => stderr.write(tty ? `\r\n\x1b[2m${m}\x1b[0m\r\n` : `${m}\n`);
  let restore = () => {};
  let lastOutput = Date.now();
  let eofTimer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<number>((resolve, reject) => {
      const conn = connectShell({
        url: o.api.target.url, token, project: o.project, environment: o.environment, kind: o.kind, ...size(),
        ...(o.yesProduction ? { confirmProduction: true } : {}),
      }, {
        opened(info) {
          note(`odooops: ${info.where} on ${info.project}/${info.environment} (${info.stage})${info.recorded ? '; this session is recorded, what you type included' : ''}; ended after ${Math.round(info.idleSeconds / 60)} min without input`);
          if (tty) {
            stdin.setRawMode(true);
            const onResize = () => conn.resize(size().cols, size().rows);
            process.on('SIGWINCH', onResize);
            restore = () => {
              process.off('SIGWINCH', onResize);
              stdin.setRawMode(false);
            };
          }
          stdin.on('data', (d: Buffer) => conn.write(d));
          stdin.on('end', () => {
            if (tty) return;
            // The end of a pipe is a Ctrl-D there. A program that was not reading yet (psql before its
            // prompt switches the terminal's mode) can lose it: it is sent again whenever the other side
            // has gone quiet, waiting for input that will not come.
            conn.write('\x04');
            eofTimer = setInterval(() => {
              if (Date.now() - lastOutput > 400) conn.write('\x04');
            }, 500);
          });
          stdin.resume();
        },
        output(data) {
          lastOutput = Date.now();
          // The terminal is behind: stop reading the socket (the server pauses the process in turn).
          if (!stdout.write(data)) {
            conn.pause();
            stdout.once('drain', () => conn.resume());
          }
        },
        exit(e) {
          restore();
          if (e.reason !== 'exited') note(`odooops: the session ended: ${e.reason}`);
          resolve(e.code ?? EXIT.runFailed);
        },
        error(e) {
          restore();
          const hint = e.code === 'confirmation_required'
            ? `Add --yes-production to open it on ${o.project}'s production; the session is recorded, what you type included.`
            : e.hint;
          reject(new CliError(e.message, e.code === 'failed' ? EXIT.server : EXIT.rejected, hint, e.code));
        },
        dropped(reason) {
          restore();
          reject(new CliError(`the connection to the server was lost (${reason}); whatever ran in the session has been ended`, EXIT.unreachable));
        },
      });
    });
  } finally {
    clearInterval(eofTimer);
    restore();
    stdin.pause();
  }
}
