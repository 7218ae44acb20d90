// The local Realtime gateway (embedded mode): serves /realtime/v1/websocket speaking Supabase
// Realtime's protocol, so the extension's supabase-js client works unchanged against a local server.
// It delivers Broadcast from Database: rows that realtime.send() stores in realtime.messages, announced
// by NOTIFY realtime_messages. Joins are authorized by the same realtime.messages policies Supabase
// evaluates, as the joining user, on the gateway's own small pool (a join flood cannot starve the API),
// within the limits of client-limits.ts; and re-evaluated when a membership changes (ops_membership), so
// a removed member's channels end at once instead of when their token expires.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Claims } from '../db/session.ts';
import { AuthError, type TokenVerifier } from '../auth/tokens.ts';
import { AccessTokenPayload, FrameError, JoinPayload, decode, encode, type Frame, type Vsn } from './protocol.ts';
import { DEFAULT_CLIENT_LIMITS, REFUSED, TokenBucket, UserJoinRates, claimedSubject, type ClientLimits } from './client-limits.ts';

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
  /** The token the claims came from: the same token sent again needs no new check (as Supabase). */
  token: string;
  expiry: NodeJS.Timeout | undefined;
  /** Why the server ended it, once it has. */
  closed?: string;
}

interface Connection {
  ws: WebSocket;
  vsn: Vsn;
  /** The apikey the socket connected with: not a user's token, whatever a client pushes it as. */
  apiKey: string;
  channels: Map<string, Channel>;
  /** Topics with joins awaiting authorization, and how many each: they count toward the channel cap. */
  pending: Map<string, number>;
  /** Joins and token refreshes awaiting authorization. */
  inFlight: number;
  /** This socket's join rate, whatever tokens its joins carry: bounds the verifications a socket causes. */
  joins: TokenBucket;
  /** This socket's frame budget; set while reading it is paused for having overspent it. */
  frames: TokenBucket;
  throttle: NodeJS.Timeout | undefined;
}

export interface GatewayOptions {
  server: Server;
  pool: pg.Pool;
  databaseUrl: string;
  verifier: TokenVerifier;
  log: (m: string) => void;
  limits?: Partial<ClientLimits>;
  /** Websocket paths other handlers on the same server upgrade (the shells'): not answered with 404 here. */
  otherPaths?: string[];
}

const INVALID_TOKEN = 'Unauthorized: the token is not valid for this server';
const revoked = (subTopic: string) => `You no longer have permission to read from this Channel topic: ${subTopic}`;

export class RealtimeGateway {
  private readonly opts: GatewayOptions;
  private readonly limits: ClientLimits;
  /** Joins, token refreshes and re-checks: everything a client can cause in the database, apart from the API's pool. */
  private readonly authPool: pg.Pool;
  private readonly userRates: UserJoinRates;
  private readonly counters = { verifications: 0, authorizations: 0 };
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  /** sub-topic → channels joined to it. */
  private readonly subscribers = new Map<string, Set<{ conn: Connection; channel: Channel }>>();
  private listener: pg.Client | undefined;
  private listened = false;
  /** Bumped by every membership notification: a join checked before one is checked again. */
  private membershipEpoch = 0;
  private recheckUsers = new Set<string>();
  private recheckEveryone = false;
  private rechecking: Promise<void> | undefined;
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
    this.limits = { ...DEFAULT_CLIENT_LIMITS, ...opts.limits };
    this.authPool = new pg.Pool({ connectionString: opts.databaseUrl, max: this.limits.authConnections, application_name: 'odooops-realtime-auth' });
    this.authPool.on('error', () => {}); // an idle client lost: the pool replaces it
    this.userRates = new UserJoinRates(this.limits);
    // One message per turn of the event loop, not every frame of a read at once: a socket sending as
    // fast as it can then shares the loop with everyone else (the API answered a flood's 40,000 frames
    // in 0.7 s steps otherwise), and while a message waits its turn ws stops reading that socket, so
    // what a flood has sent but not been served stays in TCP's buffers, not in ours.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_FRAME, allowSynchronousEvents: false });
    this.onUpgrade = (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== REALTIME_PATH) {
        if (opts.otherPaths?.includes(url.pathname)) return; // another websocket of this server answers it
        socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
        return;
      }
      const vsn = url.searchParams.get('vsn') ?? '1.0.0';
      if (vsn !== '1.0.0' && vsn !== '2.0.0') {
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\nunsupported vsn');
        return;
      }
      const header = req.headers['x-api-key'];
      const apiKey = url.searchParams.get('apikey') || (Array.isArray(header) ? header[0] : header);
      if (!apiKey) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\n\r\nMissingAPIKey');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, vsn, apiKey));
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
      await this.authPool.query(
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
    client.on('notification', (n) => {
      if (n.channel === 'ops_membership') this.onMembershipChange(n.payload ?? '');
      else this.onNotification(n.payload ?? '');
    });
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
    await client.query('listen ops_membership');
    this.listener = client;
    // Membership changes made while nobody listened were not heard: re-check every channel.
    if (this.listened) this.membershipChanged(undefined);
    this.listened = true;
  }

  private onMembershipChange(payload: string): void {
    let note: { user_id?: unknown };
    try {
      note = JSON.parse(payload);
    } catch {
      return;
    }
    if (typeof note.user_id === 'string') this.membershipChanged(note.user_id.toLowerCase());
  }

  /** A user's rights may have shrunk (undefined: anyone's): re-check their channels. */
  private membershipChanged(user: string | undefined): void {
    this.membershipEpoch++;
    this.queueRecheck(user);
  }

  private queueRecheck(user: string | undefined): void {
    if (user === undefined) this.recheckEveryone = true;
    else this.recheckUsers.add(user);
    this.rechecking ??= this.recheck().finally(() => {
      this.rechecking = undefined;
    });
  }

  /**
   * Evaluates the policies again for the channels concerned and ends those they no longer allow, the
   * way an expired token ends one. A check that fails (the database is away) keeps the channel: losing
   * the database also loses the LISTEN connection, and its reconnection re-checks every channel.
   */
  private async recheck(): Promise<void> {
    while (!this.stopped && (this.recheckEveryone || this.recheckUsers.size > 0)) {
      const everyone = this.recheckEveryone;
      const users = this.recheckUsers;
      this.recheckEveryone = false;
      this.recheckUsers = new Set();
      const targets: { conn: Connection; channel: Channel }[] = [];
      for (const conn of this.connections) {
        for (const channel of conn.channels.values()) {
          if (everyone || users.has(channel.claims.sub.toLowerCase())) targets.push({ conn, channel });
        }
      }
      for (let i = 0; i < targets.length; i += 16) {
        await Promise.all(targets.slice(i, i + 16).map(async ({ conn, channel }) => {
          let ok: boolean;
          try {
            // The token first: a signed-out or revoked session ends its channels now, not at its expiry.
            try {
              await this.opts.verifier.verify(channel.token);
            } catch (err) {
              if (!(err instanceof AuthError)) throw err;
              if (conn.channels.get(channel.topic) === channel) this.closeChannel(conn, channel, `Unauthorized: ${err.message}`);
              return;
            }
            this.counters.authorizations++;
            ok = await canRead(this.authPool, channel.claims, channel.subTopic);
          } catch (err) {
            this.opts.log(`realtime gateway: re-checking ${channel.subTopic} failed: ${(err as Error).message}`);
            return;
          }
          if (!ok && conn.channels.get(channel.topic) === channel) this.closeChannel(conn, channel, revoked(channel.subTopic));
        }));
      }
    }
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

  private accept(ws: WebSocket, vsn: Vsn, apiKey: string): void {
    const conn: Connection = {
      ws, vsn, apiKey, channels: new Map(), pending: new Map(), inFlight: 0,
      joins: new TokenBucket(this.limits.joinBurst, this.limits.joinsPerSecond),
      frames: new TokenBucket(this.limits.frameBurst, this.limits.framesPerSecond), throttle: undefined,
    };
    this.connections.add(conn);
    ws.on('message', (data, isBinary) => {
      // Over its frame budget, a socket's frame is still served (it has arrived), but the socket is
      // not read again until the excess is paid for: a flood waits in TCP, at the sender's cost.
      const wait = conn.frames.charge();
      if (wait > 0 && !conn.throttle) {
        ws.pause();
        conn.throttle = setTimeout(() => {
          conn.throttle = undefined;
          ws.resume();
        }, wait);
        conn.throttle.unref();
      }
      void this.onFrame(conn, data, isBinary);
    });
    ws.on('close', () => this.drop(conn));
    ws.on('error', () => this.drop(conn));
  }

  private drop(conn: Connection): void {
    clearTimeout(conn.throttle);
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
    if (!access_token || isApiKey(conn, access_token)) {
      return this.reply(conn, f, 'error', { reason: 'Unauthorized: join with a user\'s access_token, not the apikey (createClient(url, key, { accessToken }), then await realtime.setAuth())' });
    }
    const subTopic = f.topic.slice('realtime:'.length);
    const admitted = this.admit(conn, access_token, f.topic);
    if ('refused' in admitted) return this.reply(conn, f, 'error', { reason: admitted.refused });
    const { user } = admitted;

    const epoch = this.membershipEpoch;
    conn.pending.set(f.topic, (conn.pending.get(f.topic) ?? 0) + 1);
    let claims: Claims | string;
    try {
      claims = await this.authorize(conn, user, access_token, subTopic);
    } finally {
      const left = conn.pending.get(f.topic)! - 1;
      if (left > 0) conn.pending.set(f.topic, left);
      else conn.pending.delete(f.topic);
    }
    if (this.stopped || !this.connections.has(conn)) return; // the socket went meanwhile: nothing to keep
    if (typeof claims === 'string') return this.reply(conn, f, 'error', { reason: claims });
    const channel: Channel = { topic: f.topic, subTopic, joinRef: f.joinRef, claims, token: access_token, expiry: undefined };
    const first = this.register(conn, channel);
    this.armExpiry(conn, channel);
    // Before the reply: once the client is told SUBSCRIBED, every later message reaches it.
    await (first ? this.syncWatch(subTopic) : this.watchChain);
    if (channel.closed) return this.reply(conn, f, 'error', { reason: channel.closed });
    this.reply(conn, f, 'ok', {});
    // A membership change announced while this join was being checked may not be in what it saw.
    if (this.membershipEpoch !== epoch) this.queueRecheck(claims.sub.toLowerCase());
  }

  /**
   * The limits, checked in memory before a join or a token refresh costs a verification or a query,
   * cheapest first. Admitted, it has charged the socket's join rate and that of the user the token
   * claims to be (`user`); `invalid` is a token that is not even a JWT.
   */
  private admit(conn: Connection, token: string, topic?: string): { user: string } | { refused: string; invalid?: true } {
    if (conn.inFlight >= this.limits.maxJoinsInFlight) return { refused: REFUSED.tooManyInFlight };
    if (topic !== undefined && !conn.channels.has(topic) && !conn.pending.has(topic)) {
      let held = conn.channels.size;
      for (const t of conn.pending.keys()) if (!conn.channels.has(t)) held++;
      if (held >= this.limits.maxChannelsPerSocket) return { refused: REFUSED.tooManyChannels };
    }
    const user = claimedSubject(token);
    if (!user) return { refused: INVALID_TOKEN, invalid: true };
    if (!conn.joins.take()) return { refused: REFUSED.tooManyJoins };
    if (!this.userRates.take(user)) return { refused: REFUSED.tooManyJoins };
    return { user };
  }

  /** Adds a channel, replacing one on the same topic; true when it is the topic's first subscriber. */
  private register(conn: Connection, channel: Channel): boolean {
    const existing = conn.channels.get(channel.topic);
    conn.channels.set(channel.topic, channel);
    let subs = this.subscribers.get(channel.subTopic);
    if (!subs) this.subscribers.set(channel.subTopic, (subs = new Set()));
    const first = subs.size === 0;
    subs.add({ conn, channel });
    if (existing) {
      // Replaced in place: the topic never looks unwatched in between.
      clearTimeout(existing.expiry);
      for (const s of subs) if (s.channel === existing) subs.delete(s);
    }
    return first;
  }

  private async refreshToken(conn: Connection, channel: Channel, f: Frame): Promise<void> {
    const parsed = AccessTokenPayload.safeParse(f.payload);
    if (!parsed.success) return this.reply(conn, f, 'error', { reason: 'malformed access_token payload' });
    const token = parsed.data.access_token;
    // As Supabase: the same token again, none (null) or an apikey changes nothing; the channel keeps
    // the user's token it has, until that expires. supabase-js 2.112.1 and later send the apikey when
    // their accessToken callback has no session, and the same token after every heartbeat.
    if (token === null || token === channel.token || isApiKey(conn, token)) return this.reply(conn, f, 'ok', {});
    const admitted = this.admit(conn, token);
    if ('refused' in admitted) {
      if (admitted.invalid) return this.closeChannel(conn, channel, admitted.refused);
      // Over a limit the channel keeps the token it has (still checked at its expiry).
      return this.reply(conn, f, 'error', { reason: admitted.refused });
    }
    const { user } = admitted;
    const epoch = this.membershipEpoch;
    const claims = await this.authorize(conn, user, token, channel.subTopic);
    if (conn.channels.get(channel.topic) !== channel) return; // left, replaced or closed meanwhile
    if (typeof claims === 'string') {
      this.closeChannel(conn, channel, claims);
      return;
    }
    channel.claims = claims;
    channel.token = token;
    this.armExpiry(conn, channel);
    this.reply(conn, f, 'ok', {});
    if (this.membershipEpoch !== epoch) this.queueRecheck(claims.sub.toLowerCase());
  }

  /**
   * Verifies the token and evaluates the realtime.messages policies as its user; a string is a refusal.
   * `user` is the subject the token claims, whose join rate admit() charged.
   */
  private async authorize(conn: Connection, user: string, token: string, subTopic: string): Promise<Claims | string> {
    conn.inFlight++;
    try {
      let claims: Claims;
      try {
        this.counters.verifications++;
        claims = await this.opts.verifier.verify(token);
      } catch (err) {
        this.userRates.refund(user); // not that user's join: a forged subject spends nothing of theirs
        return `${/expired/.test((err as Error).message) ? 'InvalidJWTExpiration' : 'Unauthorized'}: ${err instanceof AuthError ? err.message : 'invalid token'}`;
      }
      this.counters.authorizations++;
      if (!(await canRead(this.authPool, claims, subTopic))) {
        return `Unauthorized: You do not have permissions to read from this Channel topic: ${subTopic}`;
      }
      return claims;
    } finally {
      conn.inFlight--;
    }
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
    channel.closed = message;
    this.leave(conn, channel);
    this.send(conn, {
      joinRef: channel.joinRef, ref: null, topic: channel.topic, event: 'system',
      payload: { message, status: 'error', extension: 'system', channel: channel.subTopic },
    });
    this.send(conn, { joinRef: channel.joinRef, ref: null, topic: channel.topic, event: 'phx_close', payload: {} });
  }

  private leave(conn: Connection, channel: Channel): void {
    clearTimeout(channel.expiry);
    if (conn.channels.get(channel.topic) === channel) conn.channels.delete(channel.topic);
    const subs = this.subscribers.get(channel.subTopic);
    if (!subs) return;
    for (const s of subs) if (s.channel === channel) subs.delete(s);
    if (subs.size === 0) {
      this.subscribers.delete(channel.subTopic);
      void this.syncWatch(channel.subTopic);
    }
  }

  /**
   * Connected sockets, joined channels, users with a join rate under way, and how many tokens were
   * verified and policy checks run since the start (what limits must keep refusals from causing).
   */
  stats(): { connections: number; channels: number; users: number; verifications: number; authorizations: number } {
    let channels = 0;
    for (const c of this.connections) channels += c.channels.size;
    return { connections: this.connections.size, channels, users: this.userRates.size, ...this.counters };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pruneTimer);
    this.opts.server.off('upgrade', this.onUpgrade);
    for (const c of this.connections) {
      for (const ch of c.channels.values()) clearTimeout(ch.expiry);
      clearTimeout(c.throttle);
      c.ws.terminate();
    }
    this.connections.clear();
    this.wss.close();
    this.subscribers.clear();
    this.userRates.stop();
    if (this.gated) await this.opts.pool.query('delete from realtime.odooops_gateway_topics where gateway = $1', [this.id]).catch(() => {});
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => {});
    await this.rechecking;
    await this.authPool.end().catch(() => {});
  }
}

/** A project's apikey (a new-style sb_ key, or the key this socket connected with), not a user's token. */
function isApiKey(conn: Connection, token: string): boolean {
  return token.startsWith('sb_') || token === conn.apiKey;
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
