// Shells on an environment over a websocket (GET /api/shell on the API's port). The first frame opens
// the session: a token, the project and environment, the kind (shell, psql, odoo) and the terminal's
// size, nothing else (contract ShellOpen is strict). The database decides who may
// (ops.open_shell_session, as the person, records the session); the registry decides what runs
// (commands.ts). Then binary frames carry the terminal's bytes both ways and JSON frames resize it; the
// process's exit comes back as a frame and closes the socket. A closed socket ends every process the
// session started (process-tree.ts); so does a session nobody typed in for idleMs.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
// Named imports: in a bundle (esbuild) this CommonJS module, which sets __esModule, has no default export.
import { spawn as spawnPty, type IPty } from '@lydell/node-pty';
import type pg from 'pg';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { SHELL_PATH, ShellClientFrame, ShellOpen, type ShellError, type ShellServerFrame, type Stage } from '../../contract/index.ts';
import { AuthError, type TokenVerifier } from '../auth/tokens.ts';
import { asUser, SERVICE_CLAIMS, type Claims } from '../db/session.ts';
import { InfraError, type Infrastructure } from '../infra/registry.ts';
import { runUser } from '../infra/run-user.ts';
import type { EnvironmentRow } from '../rows.ts';
import { shellCommand, TERM } from './commands.ts';
import { endSession } from './process-tree.ts';

/** Largest frame a client may send (input is typed, or pasted: 64 KiB at a time is plenty). */
export const MAX_SHELL_FRAME = 64 * 1024;
/** Output waiting for a slow client: above this the process is paused (its writes block), below LOW it resumes. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 128 * 1024;

export interface ShellGatewayOptions {
  server: Server;
  pool: pg.Pool;
  verifier: TokenVerifier;
  infra: () => Infrastructure;
  workDir: string;
  log: (m: string) => void;
  /** A session nobody typed in (or resized) for this long is ended; default 30 minutes. */
  idleMs?: number;
  /** Open sessions per person on this server; default 4. */
  maxPerUser?: number;
  /** How long a socket may take to send its open frame; default 10 s. */
  openTimeoutMs?: number;
  /** Production input is written to the database at most this often; default 2 s. */
  recordEveryMs?: number;
}

interface Session {
  id: number;
  user: string;
  marker: string;
  proc: IPty | undefined;
  end(reason: string, code?: number | null): Promise<void>;
}

export class ShellGateway {
  private readonly opts: ShellGatewayOptions;
  private readonly wss: WebSocketServer;
  private readonly perUser = new Map<string, number>();
  private readonly sessions = new Set<Session>();
  private readonly serverName = `${hostname()}:${process.pid}`;
  private readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The most input bytes ever waiting for a process to read them (bounded by backpressure; tests read it). */
  readonly stats = { maxInputQueued: 0 };
  /** A session without input for this long is ended (sessions opened from then on). */
  idleMs: number;

  constructor(opts: ShellGatewayOptions) {
    this.opts = opts;
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_SHELL_FRAME });
    this.onUpgrade = (req, socket, head) => {
      if (new URL(req.url ?? '/', 'http://localhost').pathname !== SHELL_PATH) return;
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    };
  }


  start(): void {
    this.opts.server.on('upgrade', this.onUpgrade);
  }

  /** Open sessions (tests, and the server's stop). */
  get open(): number {
    return this.sessions.size;
  }

  async stop(): Promise<void> {
    this.opts.server.off('upgrade', this.onUpgrade);
    await Promise.all([...this.sessions].map((s) => s.end('the server stopped')));
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private send(ws: WebSocket, frame: ShellServerFrame): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
  }

  private refuse(ws: WebSocket, code: ShellError['code'], message: string, hint?: string): void {
    this.send(ws, { type: 'error', code, message, ...(hint ? { hint } : {}) });
    ws.close(code === 'unauthorized' || code === 'token_expired' ? 4401 : code === 'bad_request' ? 4400 : 4403, code);
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    // The peer's address as this server sees it; a proxy's X-Forwarded-For would be the client's word.
    const client = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    let state: 'waiting' | 'opening' | 'open' | 'closed' = 'waiting';
    let session: Session | undefined;
    const early: Buffer[] = [];
    let earlySize: { cols: number; rows: number } | undefined;
    let handlers: { input(b: Buffer): void; resize(c: number, r: number): void } | undefined;
    const openTimer = setTimeout(() => {
      if (state === 'waiting') this.refuse(ws, 'bad_request', 'no open frame arrived within the time allowed');
    }, this.opts.openTimeoutMs ?? 10_000);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (state === 'waiting') {
        clearTimeout(openTimer);
        if (isBinary) return this.refuse(ws, 'bad_request', 'the first frame must be the JSON open frame');
        let parsed: unknown;
        try {
          parsed = JSON.parse(buf.toString('utf8'));
        } catch {
          return this.refuse(ws, 'bad_request', 'the open frame is not JSON');
        }
        const open = ShellOpen.safeParse(parsed);
        if (!open.success) {
          return this.refuse(ws, 'bad_request', `the open frame is not valid: ${open.error.issues.map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`).join('; ')}`,
            'a client chooses the kind (shell, psql or odoo) and the terminal size; what runs, where and as whom is the server\'s');
        }
        state = 'opening';
        void this.openSession(ws, open.data, client).then((s) => {
          if (!s) return void (state = 'closed');
          session = s.session;
          if (ws.readyState !== ws.OPEN) return void s.session.end('the connection closed');
          state = 'open';
          handlers = s;
          if (earlySize) s.resize(earlySize.cols, earlySize.rows);
          for (const b of early.splice(0)) s.input(b);
        }, (err) => {
          this.opts.log(`shell: opening failed: ${(err as Error).stack ?? err}`);
          this.refuse(ws, 'failed', 'the shell could not be opened: the server log says why');
          state = 'closed';
        });
        return;
      }
      if (state === 'opening') {
        // Typed before the session was there: kept (bounded) and given to it once open. A terminal resized
        // meanwhile (an editor lays its panel out as the session opens): the last size, applied once open.
        const size = isBinary ? undefined : resizeFrame(buf);
        if (size) earlySize = size;
        else if (isBinary && early.reduce((n, b) => n + b.length, 0) + buf.length <= MAX_SHELL_FRAME) early.push(buf);
        else this.refuse(ws, 'bad_request', 'wait for the opened frame before sending more than input and resizes');
        return;
      }
      if (state !== 'open' || !handlers) return;
      if (isBinary) return handlers.input(buf);
      let frame: unknown;
      try {
        frame = JSON.parse(buf.toString('utf8'));
      } catch {
        frame = undefined;
      }
      const parsed = ShellClientFrame.safeParse(frame);
      if (!parsed.success) {
        this.refuse(ws, 'bad_request', `not a frame a client may send: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`).join('; ')}`,
          'after the open frame, a client sends binary input and {"type":"resize","cols":…,"rows":…}');
        void session?.end('the client sent a frame it may not send');
        return;
      }
      handlers.resize(parsed.data.cols, parsed.data.rows);
    });
    ws.on('close', () => {
      clearTimeout(openTimer);
      state = 'closed';
      void session?.end('the connection closed');
    });
    ws.on('error', () => {});
  }

  private async openSession(ws: WebSocket, open: ShellOpen, client: string) {
    const { log, pool } = this.opts;
    let claims: Claims;
    try {
      claims = await this.opts.verifier.verify(open.token);
    } catch (err) {
      const e = err instanceof AuthError ? err : new AuthError('the token is not valid for this server');
      this.refuse(ws, e.code === 'token_expired' ? 'token_expired' : 'unauthorized', e.message, 'sign in again (odooops login), or get a token: odooops token --user <your user id>');
      return null;
    }
    const user = claims.sub.toLowerCase();
    const max = this.opts.maxPerUser ?? 4;
    if ((this.perUser.get(user) ?? 0) >= max) {
      this.refuse(ws, 'too_many', `you have ${max} shells open on this server already`, 'close one of them first');
      return null;
    }
    // Counted from here, so that opens racing each other cannot pass the limit together.
    this.perUser.set(user, (this.perUser.get(user) ?? 0) + 1);
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      const n = (this.perUser.get(user) ?? 1) - 1;
      if (n > 0) this.perUser.set(user, n);
      else this.perUser.delete(user);
    };
    let row: EnvironmentRow & { session_id: number; project_slug: string };
    try {
      const r = await asUser(pool, claims, async (c) => (await c.query(
        'select * from ops.open_shell_session($1, $2, $3, $4, $5, $6)',
        [open.project, open.environment, open.kind, open.confirmProduction === true, client, this.serverName],
      )).rows[0]);
      row = { ...r, id: r.environment_id };
    } catch (err) {
      uncount();
      const e = err as { code?: string; message: string; hint?: string; detail?: string };
      const code: ShellError['code'] = e.code === 'P0002' ? 'not_found' : e.detail === 'confirmation_required' ? 'confirmation_required'
        : e.code === '42501' ? 'forbidden' : e.code === '22023' ? 'bad_request' : 'failed';
      if (code === 'failed') throw err;
      log(`shell: refused ${open.kind} on ${open.project}/${open.environment} to ${claims.email ?? user} from ${client}: ${e.message}`);
      this.refuse(ws, code, e.message, e.hint);
      return null;
    }
    const id = row.session_id;
    const who = `${claims.email ?? user}`;
    const started = Date.now();
    const recorded = row.stage === 'production';
    const service = <T>(fn: (c: pg.PoolClient) => Promise<T>) => asUser(pool, SERVICE_CLAIMS, fn);
    // Production input goes to the database in order, a few seconds at a time.
    let writes: Promise<unknown> = Promise.resolve();
    const decoder = new StringDecoder('utf8');
    let typed = '';
    let recordTimer: NodeJS.Timeout | undefined;
    const flush = () => {
      clearTimeout(recordTimer);
      recordTimer = undefined;
      if (!typed) return writes;
      const chunk = typed.replace(/\0/g, '\uFFFD');
      typed = '';
      writes = writes.then(() => service((c) => c.query('select ops.shell_session_input($1, $2)', [id, chunk])))
        .catch((err) => log(`shell ${id}: could not record the input typed: ${(err as Error).message}`));
      return writes;
    };

    const marker = `ODOOOPS_SHELL_SESSION=${randomUUID()}`;
    let proc: IPty | undefined;
    let ended: Promise<void> | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    let exited = false;
    const session: Session = {
      id, user, marker, proc: undefined,
      end: (reason: string, code: number | null = null) => {
        ended ??= (async () => {
          clearTimeout(idleTimer);
          const alive = proc !== undefined && !exited;
          if (alive) {
            const killed = await endSession(marker);
            if (killed) log(`shell ${id}: killed ${killed} process(es) left after the hang-up`);
          }
          if (recorded) typed += decoder.end();
          await flush();
          await service((c) => c.query('select ops.close_shell_session($1, $2, $3)', [id, code, reason]))
            .catch((err) => log(`shell ${id}: could not record its end: ${(err as Error).message}`));
          log(`shell ${id}: ${open.kind} on ${row.project_slug}/${row.name} by ${who} ended after ${((Date.now() - started) / 1000).toFixed(0)} s: ${reason}${code === null ? '' : ` (exit ${code})`}`);
          this.sessions.delete(session);
          uncount();
          this.send(ws, { type: 'exit', code, reason });
          if (ws.readyState === ws.OPEN) ws.close(1000, 'exit');
        })();
        return ended;
      },
    };
    this.sessions.add(session);
    if (ws.readyState !== ws.OPEN) {
      await session.end('the connection closed while the shell opened');
      return null;
    }

    let command;
    try {
      command = shellCommand(open.kind, row, row.project_slug, this.opts.infra(), this.opts.workDir, marker);
    } catch (err) {
      const known = err instanceof InfraError;
      if (!known) log(`shell ${id}: ${(err as Error).stack ?? err}`);
      this.send(ws, { type: 'error', code: known ? 'unavailable' : 'failed', message: known ? err.message : 'the shell could not be opened: the server log says why' });
      await session.end(`refused: ${known ? err.message : 'an error on the server'}`);
      return null;
    }
    const u = runUser();
    try {
      proc = spawnPty(command.file, command.args, {
        name: TERM, cols: open.cols, rows: open.rows, cwd: command.cwd, env: command.env, encoding: null,
        ...(u.switches ? { uid: u.uid, gid: u.gid } : {}),
      });
    } catch (err) {
      this.send(ws, { type: 'error', code: 'unavailable', message: `${command.file} could not be started: ${(err as Error).message}` });
      await session.end(`could not start ${command.file}`);
      return null;
    }
    session.proc = proc;
    log(`shell ${id}: ${who} opened ${open.kind} on ${row.project_slug}/${row.name} (${row.stage}) from ${client}: ${command.where}${recorded ? '; input recorded' : ''}`);
    this.send(ws, {
      type: 'opened', session: id, kind: open.kind, project: row.project_slug, environment: row.name, stage: row.stage as Stage,
      where: command.where, idleSeconds: Math.round(this.idleMs / 1000), recorded,
    });

    const armIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => void session.end(`idle: no input for ${Math.round(this.idleMs / 1000)} s`), this.idleMs);
    };
    armIdle();
    // Backpressure: a client that reads slowly pauses the process (its writes to the terminal block).
    let paused = false;
    let inputPaused = false;
    proc.onData((data) => {
      const chunk = data as unknown as Buffer;
      if (ws.readyState !== ws.OPEN) return;
      ws.send(chunk, { binary: true }, () => {
        if (paused && ws.bufferedAmount < LOW_WATER && !exited) {
          paused = false;
          proc!.resume();
        }
      });
      if (!paused && ws.bufferedAmount > HIGH_WATER) {
        paused = true;
        proc!.pause();
      }
    });
    proc.onExit(({ exitCode, signal }) => {
      exited = true;
      // Killed by a signal: the shell's convention, 128 + its number.
      const code = signal ? 128 + signal : exitCode;
      // Whatever it left running in the background goes with it.
      void endSession(marker, 0).then((killed) => {
        if (killed) log(`shell ${id}: killed ${killed} process(es) left when it ended`);
        return session.end(signal ? `ended by signal ${signal}` : 'exited', code);
      });
    });
    return {
      session,
      input: (b: Buffer) => {
        if (exited) return;
        armIdle();
        if (recorded) {
          typed += decoder.write(b);
          if (typed.length > 16_384) void flush();
          else recordTimer ??= setTimeout(() => void flush(), this.opts.recordEveryMs ?? 2000);
        }
        proc!.write(b as unknown as string);
        // Input the process does not read piles up in the pty's write queue: past HIGH_WATER this socket is
        // no longer read (TCP holds the rest, the client's buffer grows) until the queue drains.
        const queue = (proc as unknown as { _socket?: { writableLength?: number; once(e: 'drain', f: () => void): void } })._socket;
        if (queue?.writableLength !== undefined) this.stats.maxInputQueued = Math.max(this.stats.maxInputQueued, queue.writableLength);
        if (!inputPaused && queue?.writableLength !== undefined && queue.writableLength > HIGH_WATER) {
          inputPaused = true;
          ws.pause();
          queue.once('drain', () => {
            inputPaused = false;
            ws.resume();
          });
        }
      },
      resize: (cols: number, rows: number) => {
        if (exited) return;
        armIdle();
        proc!.resize(cols, rows);
      },
    };
  }
}

/** A client's resize frame, or undefined for anything else. */
function resizeFrame(buf: Buffer): { cols: number; rows: number } | undefined {
  try {
    const r = ShellClientFrame.safeParse(JSON.parse(buf.toString('utf8')));
    return r.success ? { cols: r.data.cols, rows: r.data.rows } : undefined;
  } catch {
    return undefined;
  }
}
