// The local Realtime gateway (embedded mode): serves /realtime/v1/websocket speaking Supabase
// Realtime's protocol, so the extension's supabase-js client works unchanged against a local server.
// It delivers Broadcast from Database: rows that realtime.send() stores in realtime.messages, announced
// by NOTIFY realtime_messages. Joins are authorized by the same realtime.messages policies Supabase
// evaluates, as the joining user.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Claims } from '../db/session.ts';
import { AuthError, type TokenVerifier } from '../auth/tokens.ts';
import { AccessTokenPayload, FrameError, JoinPayload, decode, encode, type Frame, type Vsn } from './protocol.ts';

export const REALTIME_PATH = '/realtime/v1/websocket';
/** Largest frame a client may send; Supabase allows far more, but this gateway only takes small control frames. */
export const MAX_CLIENT_FRAME = 64 * 1024;
/** A subscriber this far behind is disconnected (it reconnects and gap-fills by sequence number). */
const MAX_BUFFERED = 16 * 1024 * 1024;

interface Channel {
  topic: string; // full wire topic, "realtime:run:42"
  subTopic: string; // "run:42", what realtime.topic() returns
  joinRef: string | null;
  claims: Claims;
  expiry: NodeJS.Timeout | undefined;
}

interface Connection {
  ws: WebSocket;
  vsn: Vsn;
  channels: Map<string, Channel>;
}

export interface GatewayOptions {
  server: Server;
  pool: pg.Pool;
  databaseUrl: string;
  verifier: TokenVerifier;
  log: (m: string) => void;
}

export class RealtimeGateway {
  private readonly opts: GatewayOptions;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  /** sub-topic → channels joined to it. */
  private readonly subscribers = new Map<string, Set<{ conn: Connection; channel: Channel }>>();
  private listener: pg.Client | undefined;
  private pending: number[] = [];
  private delivering: Promise<void> | undefined;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** This gateway's name in realtime.odooops_gateway_topics, when the shims' table is there. */
  private readonly id = `${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
  private gated = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  constructor(opts: GatewayOptions) {
    this.opts = opts;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_FRAME });
    this.onUpgrade = (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== REALTIME_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
        return;
      }
      const vsn = url.searchParams.get('vsn') ?? '1.0.0';
      if (vsn !== '1.0.0' && vsn !== '2.0.0') {
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\nunsupported vsn');
        return;
      }
      if (!url.searchParams.get('apikey') && !req.headers['x-api-key']) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\n\r\nMissingAPIKey');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, vsn));
    };
  }

  async start(): Promise<void> {
    const { rows } = await this.opts.pool.query(`select to_regclass('realtime.odooops_gateway_topics') is not null as gated`);
    this.gated = rows[0].gated;
    this.opts.server.on('upgrade', this.onUpgrade);
    await this.listen();
    if (this.gated) {
      this.pruneTimer = setInterval(() => void this.prune(), 10 * 60_000);
      this.pruneTimer.unref();
    }
  }

  /**
   * Deletes delivered broadcasts (Supabase keeps its own for 3 days; only the shims' table is ours).
   * Live delivery is immediate and a late viewer reads history from the API, so an hour is plenty.
   */
  async prune(olderThanSeconds = 3600): Promise<number> {
    if (!this.gated) return 0;
    try {
      const { rowCount } = await this.opts.pool.query(
        `delete from realtime.messages where inserted_at < now() - make_interval(secs => $1)`,
        [olderThanSeconds],
      );
      return rowCount ?? 0;
    } catch (err) {
      this.opts.log(`realtime gateway: pruning old messages failed: ${(err as Error).message}`);
      return 0;
    }
  }

  private watchChain: Promise<void> = Promise.resolve();

  /**
   * Tells realtime.send whether this gateway needs NOTIFYs for a topic, from the subscriptions as they
   * are when the change runs. Changes run one after another, so a leave and a join racing on one topic
   * cannot end with the row deleted while someone is subscribed.
   */
  private syncWatch(subTopic: string): Promise<void> {
    if (!this.gated) return Promise.resolve();
    this.watchChain = this.watchChain.then(async () => {
      const on = (this.subscribers.get(subTopic)?.size ?? 0) > 0;
      await this.opts.pool.query(
        on
          ? 'insert into realtime.odooops_gateway_topics (topic, gateway) values ($1, $2) on conflict do nothing'
          : 'delete from realtime.odooops_gateway_topics where topic = $1 and gateway = $2',
        [subTopic, this.id],
      ).catch((err) => this.opts.log(`realtime gateway: cannot record the topic ${subTopic}: ${(err as Error).message}`));
    });
    return this.watchChain;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.databaseUrl, application_name: 'odooops-realtime' });
    client.on('notification', (n) => this.onNotification(n.payload ?? ''));
    const lost = () => {
      if (this.stopped || this.listener !== client) return;
      this.listener = undefined;
      this.opts.log('realtime gateway: lost its LISTEN connection; reconnecting');
      this.reconnectTimer = setTimeout(() => void this.listen().catch(() => lost()), 500);
    };
    client.on('error', lost);
    client.on('end', lost);
    await client.connect();
    await client.query('listen realtime_messages');
    this.listener = client;
  }

  private onNotification(payload: string): void {
    let note: { id?: unknown; topic?: unknown };
    try {
      note = JSON.parse(payload);
    } catch {
      return;
    }
    if (typeof note.id !== 'number' || typeof note.topic !== 'string') return;
    if (!this.subscribers.get(note.topic)?.size) return; // nobody listens: don't even read the row
    this.pending.push(note.id);
    this.delivering ??= this.deliver().finally(() => {
      this.delivering = undefined;
    });
  }

  /** Reads pending messages in id order, in batches, and fans them out. One batch in flight at a time. */
  private async deliver(): Promise<void> {
    while (this.pending.length > 0) {
      const ids = this.pending.splice(0, 500);
      let rows: { topic: string; event: string; payload: unknown }[];
      try {
        ({ rows } = await this.opts.pool.query(
          `select topic, event, payload from realtime.messages where id = any($1::bigint[]) and extension = 'broadcast' order by id`,
          [ids],
        ));
      } catch (err) {
        this.opts.log(`realtime gateway: reading messages failed: ${(err as Error).message}`);
        continue;
      }
      for (const row of rows) {
        for (const { conn, channel } of this.subscribers.get(row.topic) ?? []) {
          this.send(conn, {
            joinRef: null, ref: null, topic: channel.topic, event: 'broadcast',
            payload: { type: 'broadcast', event: row.event, payload: row.payload },
          });
        }
      }
    }
  }

  private accept(ws: WebSocket, vsn: Vsn): void {
    const conn: Connection = { ws, vsn, channels: new Map() };
    this.connections.add(conn);
    ws.on('message', (data, isBinary) => void this.onFrame(conn, data, isBinary));
    ws.on('close', () => this.drop(conn));
    ws.on('error', () => this.drop(conn));
  }

  private drop(conn: Connection): void {
    for (const ch of conn.channels.values()) this.leave(conn, ch);
    this.connections.delete(conn);
  }

  private send(conn: Connection, frame: Frame): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    if (conn.ws.bufferedAmount > MAX_BUFFERED) {
      // Too slow to keep up: let it reconnect and gap-fill instead of buffering without bound.
      conn.ws.close(1013, 'subscriber too slow; reconnect');
      return;
    }
    conn.ws.send(encode(conn.vsn, frame));
  }

  private reply(conn: Connection, f: Frame, status: 'ok' | 'error', response: Record<string, unknown>): void {
    this.send(conn, { joinRef: f.joinRef, ref: f.ref, topic: f.topic, event: 'phx_reply', payload: { status, response } });
  }

  private async onFrame(conn: Connection, data: RawData, isBinary: boolean): Promise<void> {
    if (isBinary) {
      this.send(conn, { joinRef: null, ref: null, topic: 'phoenix', event: 'phx_error', payload: { reason: 'binary frames (client broadcasts) are not accepted: OdooOps topics are read-only' } });
      return;
    }
    let f: Frame;
    try {
      f = decode(conn.vsn, data.toString());
    } catch (err) {
      this.send(conn, { joinRef: null, ref: null, topic: 'phoenix', event: 'phx_error', payload: { reason: (err as FrameError).message } });
      return;
    }
    try {
      if (f.topic === 'phoenix' && f.event === 'heartbeat') return this.reply(conn, f, 'ok', {});
      if (f.event === 'phx_join') return await this.join(conn, f);
      const channel = conn.channels.get(f.topic);
      if (!channel) return this.reply(conn, f, 'error', { reason: 'unmatched topic' });
      if (f.event === 'access_token') return await this.refreshToken(conn, channel, f);
      if (f.event === 'phx_leave') {
        this.leave(conn, channel);
        this.reply(conn, f, 'ok', {});
        this.send(conn, { joinRef: channel.joinRef, ref: null, topic: f.topic, event: 'phx_close', payload: {} });
        return;
      }
      if (f.event === 'broadcast') return this.reply(conn, f, 'error', { reason: 'OdooOps topics are read-only: clients cannot broadcast' });
      this.reply(conn, f, 'error', { reason: `unknown event "${f.event}"` });
    } catch (err) {
      this.opts.log(`realtime gateway: ${f.event} on ${f.topic} failed: ${(err as Error).message}`);
      this.reply(conn, f, 'error', { reason: 'internal error' });
    }
  }

  private async join(conn: Connection, f: Frame): Promise<void> {
    const parsed = JoinPayload.safeParse(f.payload);
    if (!parsed.success) return this.reply(conn, f, 'error', { reason: 'malformed join payload' });
    if (!f.topic.startsWith('realtime:') || f.topic.length <= 'realtime:'.length) {
      return this.reply(conn, f, 'error', { reason: 'TopicNameRequired: topics are named realtime:<name>' });
    }
    const { config = {}, access_token } = parsed.data;
    if (config.private !== true) {
      return this.reply(conn, f, 'error', { reason: 'PrivateOnly: OdooOps topics are private; join with config.private = true' });
    }
    if (config.postgres_changes?.length) {
      return this.reply(conn, f, 'error', { reason: 'postgres_changes are not served here: subscribe to the broadcast topics' });
    }
    if (!access_token) return this.reply(conn, f, 'error', { reason: 'Unauthorized: join with an access_token (supabase.realtime.setAuth)' });
    const subTopic = f.topic.slice('realtime:'.length);
    const claims = await this.authorize(access_token, subTopic);
    if (typeof claims === 'string') return this.reply(conn, f, 'error', { reason: claims });
    const existing = conn.channels.get(f.topic);
    if (existing) this.leave(conn, existing);
    const channel: Channel = { topic: f.topic, subTopic, joinRef: f.joinRef, claims, expiry: undefined };
    conn.channels.set(f.topic, channel);
    let subs = this.subscribers.get(subTopic);
    if (!subs) this.subscribers.set(subTopic, (subs = new Set()));
    subs.add({ conn, channel });
    this.armExpiry(conn, channel);
    // Before the reply: once the client is told SUBSCRIBED, every later message reaches it.
    await this.syncWatch(subTopic);
    this.reply(conn, f, 'ok', {});
  }

  private async refreshToken(conn: Connection, channel: Channel, f: Frame): Promise<void> {
    const parsed = AccessTokenPayload.safeParse(f.payload);
    if (!parsed.success) return this.reply(conn, f, 'error', { reason: 'malformed access_token payload' });
    const claims = await this.authorize(parsed.data.access_token, channel.subTopic);
    if (typeof claims === 'string') {
      this.closeChannel(conn, channel, claims);
      return;
    }
    channel.claims = claims;
    this.armExpiry(conn, channel);
    this.reply(conn, f, 'ok', {});
  }

  /** Verifies the token and evaluates the realtime.messages policies as its user; a string is a refusal. */
  private async authorize(token: string, subTopic: string): Promise<Claims | string> {
    let claims: Claims;
    try {
      claims = await this.opts.verifier.verify(token);
    } catch (err) {
      return `${/expired/.test((err as Error).message) ? 'InvalidJWTExpiration' : 'Unauthorized'}: ${err instanceof AuthError ? err.message : 'invalid token'}`;
    }
    if (!(await canRead(this.opts.pool, claims, subTopic))) {
      return `Unauthorized: You do not have permissions to read from this Channel topic: ${subTopic}`;
    }
    return claims;
  }

  private armExpiry(conn: Connection, channel: Channel): void {
    clearTimeout(channel.expiry);
    const exp = typeof channel.claims.exp === 'number' ? channel.claims.exp * 1000 : undefined;
    if (exp === undefined) return;
    // setTimeout caps at ~24.8 days; longer tokens are re-armed when that fires.
    const delay = Math.min(Math.max(0, exp - Date.now()), 2 ** 31 - 1);
    channel.expiry = setTimeout(() => {
      if (Date.now() >= exp) this.closeChannel(conn, channel, 'Token has expired');
      else this.armExpiry(conn, channel);
    }, delay);
    channel.expiry.unref();
  }

  /** Ends a channel from the server side, as Supabase does: a system error, then phx_close. */
  private closeChannel(conn: Connection, channel: Channel, message: string): void {
    this.leave(conn, channel);
    this.send(conn, {
      joinRef: channel.joinRef, ref: null, topic: channel.topic, event: 'system',
      payload: { message, status: 'error', extension: 'system', channel: channel.subTopic },
    });
    this.send(conn, { joinRef: channel.joinRef, ref: null, topic: channel.topic, event: 'phx_close', payload: {} });
  }

  private leave(conn: Connection, channel: Channel): void {
    clearTimeout(channel.expiry);
    conn.channels.delete(channel.topic);
    const subs = this.subscribers.get(channel.subTopic);
    if (!subs) return;
    for (const s of subs) if (s.channel === channel) subs.delete(s);
    if (subs.size === 0) {
      this.subscribers.delete(channel.subTopic);
      void this.syncWatch(channel.subTopic);
    }
  }

  /** Connected sockets and joined channels, for tests and diagnostics. */
  stats(): { connections: number; channels: number } {
    let channels = 0;
    for (const c of this.connections) channels += c.channels.size;
    return { connections: this.connections.size, channels };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pruneTimer);
    this.opts.server.off('upgrade', this.onUpgrade);
    for (const c of this.connections) {
      for (const ch of c.channels.values()) clearTimeout(ch.expiry);
      c.ws.terminate();
    }
    this.connections.clear();
    this.wss.close();
    this.subscribers.clear();
    if (this.gated) await this.opts.pool.query('delete from realtime.odooops_gateway_topics where gateway = $1', [this.id]).catch(() => {});
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => {});
  }
}

/**
 * Supabase's check: store a probe message on the topic as the privileged role, then, as the user with
 * realtime.topic set, see whether the realtime.messages policies let them read it. Rolled back always.
 */
export async function canRead(pool: pg.Pool, claims: Claims, subTopic: string): Promise<boolean> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query(
      `insert into realtime.messages (topic, extension, event, payload, private) values ($1, 'broadcast', 'probe', '{}', true) returning id`,
      [subTopic],
    );
    await client.query(
      `select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true), set_config('realtime.topic', $2, true)`,
      [JSON.stringify(claims), subTopic],
    );
    const seen = await client.query('select exists (select 1 from realtime.messages where id = $1) as ok', [rows[0].id]);
    return seen.rows[0].ok === true;
  } finally {
    await client.query('rollback').catch(() => {});
    client.release();
  }
}
