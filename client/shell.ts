// A shell on an environment as the CLI and the extension open it: one websocket to the server's
// /api/shell, the open frame (token, project, environment, kind, terminal size: all a client may say),
// then the terminal's bytes both ways. Frames from the server are checked against the contract.
import WebSocket from 'ws';
import { SHELL_PATH, ShellServerFrame, type ShellError, type ShellExit, type ShellKind, type ShellOpen, type ShellOpened } from '../contract/index.ts';

export interface ShellHandlers {
  opened(o: ShellOpened): void;
  output(data: Uint8Array): void;
  /** The process ended (or the server ended it: idle, server stopping). */
  exit(e: ShellExit): void;
  /** The server refused (or broke off) the session. */
  error(e: ShellError): void;
  /** The connection went away without an exit or an error: the network, or the server died. */
  dropped(reason: string): void;
}

export interface ShellRequest {
  url: string;
  token: string;
  project: string;
  environment: string;
  kind: ShellKind;
  cols: number;
  rows: number;
  confirmProduction?: boolean;
}

export interface ShellConnection {
  write(data: string | Uint8Array): void;
  resize(cols: number, rows: number): void;
  /** Stops reading output (the terminal is behind), and starts again. */
  pause(): void;
  resume(): void;
  close(): void;
}

export function shellUrl(serverUrl: string): string {
  const u = new URL(SHELL_PATH, serverUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

export function connectShell(req: ShellRequest, h: ShellHandlers): ShellConnection {
  const ws = new WebSocket(shellUrl(req.url), { maxPayload: 16 * 1024 * 1024 });
  let finished = false;
  let opened = false;
  let pendingSize: { cols: number; rows: number } | undefined;
  const send = (size: { cols: number; rows: number }) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'resize', ...size }));
  };
  const finish = (fn: () => void) => {
    if (finished) return;
    finished = true;
    fn();
  };
  ws.on('open', () => {
    const open: ShellOpen = {
      type: 'open', token: req.token, project: req.project, environment: req.environment, kind: req.kind,
      cols: req.cols, rows: req.rows, ...(req.confirmProduction ? { confirmProduction: true } : {}),
    };
    ws.send(JSON.stringify(open));
  });
  ws.on('message', (data, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (isBinary) return h.output(buf);
    let frame: ShellServerFrame;
    try {
      frame = ShellServerFrame.parse(JSON.parse(buf.toString('utf8')));
    } catch {
      finish(() => h.dropped('the server sent a frame this client does not understand'));
      ws.terminate();
      return;
    }
    if (frame.type === 'opened') {
      opened = true;
      h.opened(frame);
      if (pendingSize) send(pendingSize);
      pendingSize = undefined;
    }
    else if (frame.type === 'exit') finish(() => h.exit(frame));
    else finish(() => h.error(frame));
  });
  ws.on('close', (code, reason) => finish(() => h.dropped(`the connection closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`)));
  ws.on('error', (err) => finish(() => h.dropped(`the connection failed: ${err.message}`)));
  return {
    write(data) {
      if (ws.readyState === ws.OPEN) ws.send(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, { binary: true });
    },
    resize(cols, rows) {
      const size = { cols: Math.max(1, Math.min(1000, cols)), rows: Math.max(1, Math.min(500, rows)) };
      // Before the session is open the server takes input only; the last size goes once it is.
      if (opened) send(size);
      else pendingSize = size;
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close() {
      finished = true;
      ws.close(1000);
    },
  };
}
