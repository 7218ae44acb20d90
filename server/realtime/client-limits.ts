// What one client may ask of the Realtime gateway. A join costs a token verification (CPU) and a
// policy check in the database; without limits one user's join flood queued tens of thousands of
// checks and starved everyone else. Every refusal here is decided in memory, before either; and a
// socket's frames of any kind (malformed ones too) are read no faster than a budget allows.
import { decodeJwt } from 'jose';

export interface ClientLimits {
  /** Channels one socket may hold, joins still awaiting authorization included (Supabase's default, 100). */
  maxChannelsPerSocket: number;
  /**
   * Joins (and token refreshes) one socket may have awaiting authorization. A supabase-js client
   * rejoins all its channels at once after a reconnect, so anything below the channel cap would
   * refuse part of a legitimate rejoin; past it, a socket is flooding and refused at once instead of
   * queueing work and memory (this is what holds when the database is slow and the rate refills).
   */
  maxJoinsInFlight: number;
  /**
   * Sustained joins per second per user (shared by all their sockets) and per socket (whatever tokens
   * its joins carry). 10/s is far above a person opening log panels; at a few milliseconds of database
   * work per join it keeps one user to a small share of the gateway's connections.
   */
  joinsPerSecond: number;
  /** Joins allowed at once before the rate applies: 100, so a full client (100 channels) can rejoin in one go. */
  joinBurst: number;
  /**
   * Frames of any kind one socket may send per second, after a burst. Past it the gateway stops
   * reading that socket for as long as the excess is worth (TCP holds the rest, at the sender's
   * cost). A supabase-js client sends a heartbeat every 25 s and, at most, a join and a token per
   * channel when it reconnects (200 for a full client): within the burst, and far below the rate over time. At ~70 µs per
   * refused frame, 200/s is about 1.5% of a core per flooding socket.
   */
  framesPerSecond: number;
  frameBurst: number;
  /** Connections of the gateway's own pool for authorizations, apart from the API's. */
  authConnections: number;
}

export const DEFAULT_CLIENT_LIMITS: ClientLimits = {
  maxChannelsPerSocket: 100,
  maxJoinsInFlight: 100,
  joinsPerSecond: 10,
  joinBurst: 100,
  framesPerSecond: 200,
  frameBurst: 500,
  authConnections: 2,
};

/** Supabase Realtime's own reason texts (realtime_channel.ex), so clients can tell them apart. */
export const REFUSED = {
  tooManyChannels: 'ChannelRateLimitReached: Too many channels',
  tooManyJoins: 'ClientJoinRateLimitReached: Too many joins per second',
  // Supabase has no such cap (its joins are processes); same code, as the client's remedy is the same.
  tooManyInFlight: 'ClientJoinRateLimitReached: Too many joins awaiting authorization on this connection; wait for their replies',
} as const;

export class TokenBucket {
  private readonly burst: number;
  private readonly perSecond: number;
  private tokens: number;
  private at: number;

  constructor(burst: number, perSecond: number) {
    this.burst = burst;
    this.perSecond = perSecond;
    this.tokens = burst;
    this.at = performance.now();
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Takes a token even when there is none, going into debt (what has arrived has arrived); the
   * milliseconds until the debt is paid, 0 when there was none.
   */
  charge(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.perSecond);
  }

  /** Gives back a token taken for work that turned out not to be this bucket's (a forged token). */
  refund(): void {
    this.tokens = Math.min(this.burst, this.tokens + 1);
  }

  get full(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }
}

/**
 * One bucket per user, shared by their sockets. It is charged before the token is verified, keyed by
 * the token's unverified subject, so an over-rate user costs no verification; a token that then fails
 * verification gets its charge back, so forging someone's subject cannot spend their joins (beyond
 * the instant a verification lasts). Full buckets are dropped: the map holds only recent users.
 */
export class UserJoinRates {
  private readonly limits: ClientLimits;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(limits: ClientLimits) {
    this.limits = limits;
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  take(user: string): boolean {
    let b = this.buckets.get(user);
    if (!b) this.buckets.set(user, (b = new TokenBucket(this.limits.joinBurst, this.limits.joinsPerSecond)));
    return b.take();
  }

  refund(user: string): void {
    const b = this.buckets.get(user);
    if (!b) return;
    b.refund();
    if (b.full) this.buckets.delete(user);
  }

  sweep(): void {
    for (const [user, b] of this.buckets) if (b.full) this.buckets.delete(user);
  }

  get size(): number {
    return this.buckets.size;
  }

  stop(): void {
    clearInterval(this.sweeper);
  }
}

const SUBJECT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The user a token claims to be, read without verifying it (a base64 decode): enough to charge the
 * right bucket before the costly verification. Undefined for anything that is not a JWT with a uuid
 * subject, which verification would refuse anyway.
 */
export function claimedSubject(token: string): string | undefined {
  try {
    const { sub } = decodeJwt(token);
    return typeof sub === 'string' && SUBJECT.test(sub) ? sub.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}
