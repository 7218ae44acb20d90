// The mail catcher: an SMTP endpoint in the server process that staging and development Odoo send their
// mail to (the clone's neutralize step points Odoo's outgoing server here, with the environment's own
// login). It accepts mail only after SMTP AUTH with a login OdooOps issued (never one of production),
// within a size, recipients and rate limit, and stores it per environment (ops.store_mail). It relays
// nothing: no mail leaves through it.
import type { AddressInfo, Server } from 'node:net';
import type pg from 'pg';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import type { MailCatcherSettings } from '../infra/registry.ts';
import { mailSecretMatches } from './login.ts';

interface CatcherUser {
  environmentId: string;
  projectId: string;
  username: string;
}

export interface MailCatcher {
  host: string;
  port: number;
  stop(): Promise<void>;
}

const MB = 1024 * 1024;
const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

/**
 * Starts the endpoint on the settings' host and port; the limits and the retention are read again for
 * each message (settings() is the registry as it stands: a SIGHUP changes them, not where it listens).
 * Without a port in the settings it listens on `lastPort` (where it listened before: the environments
 * it was given to still send there), or on any free port when that is taken or there was none.
 */
export async function startMailCatcher(opts: { pool: pg.Pool; settings: () => MailCatcherSettings; log: (m: string) => void; lastPort?: number }): Promise<MailCatcher> {
  const { pool, log } = opts;
  const first = opts.settings();
  // smtp-server's SIZE limit is fixed when it starts: the largest the registry may allow, checked per message below.
  const hardMax = 100 * MB;
  // Messages accepted per environment in the last minute (timestamps): a loop in a staging database's
  // automation must not fill the control plane.
  const recent = new Map<string, number[]>();
  const underRate = (env: string) => {
    const s = opts.settings();
    const now = Date.now();
    const times = (recent.get(env) ?? []).filter((t) => now - t < 60_000);
    recent.set(env, times);
    return times.length < s.messagesPerMinute;
  };
  const userOf = (session: SMTPServerSession) => session.user as unknown as CatcherUser | undefined;

  const server = new SMTPServer({
    name: 'odooops-mail-catcher',
    banner: 'OdooOps mail catcher: mail is kept for the environment, never delivered',
    logger: false,
    // Plain text on the wire: the catcher listens on the loopback by default, and a login only lets one
    // drop mail into its own environment's catcher (README, "Mail catcher").
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: false,
    size: hardMax,
    hideSize: true,
    maxClients: 100,
    maxAllowedUnauthenticatedCommands: 5,
    socketTimeout: 60_000,
    closeTimeout: 2_000,
    onAuth(auth: SMTPServerAuthentication, _session, cb) {
      const username = auth.username ?? '';
      const password = auth.password ?? '';
      void (async () => {
        if (!username || username.length > 300 || !password || password.length > 300) return null;
        const { rows } = await pool.query('select * from ops.mail_login($1)', [username]);
        const row = rows[0] as { environment_id: string; project_id: string; secret_sha256: Buffer } | undefined;
        if (!row || !mailSecretMatches(password, row.secret_sha256)) return null;
        return { environmentId: row.environment_id, projectId: row.project_id, username } satisfies CatcherUser;
      })().then(
        (user) => (user ? cb(null, { user: user as never }) : cb(smtpError(535, 'Authentication failed: use the login OdooOps wrote into this environment (clone it again to get a new one)'))),
        (err) => {
          log(`mail catcher: login check failed: ${(err as Error).message}`);
          cb(smtpError(454, 'Temporary authentication failure'));
        },
      );
    },
    onMailFrom(_address, session, cb) {
      const user = userOf(session);
      if (!user) return cb(smtpError(530, 'Authentication required'));
      if (!underRate(user.environmentId)) return cb(smtpError(451, `Too many messages: at most ${opts.settings().messagesPerMinute} a minute per environment`));
      cb();
    },
    onRcptTo(_address, session, cb) {
      const max = opts.settings().maxRecipients;
      if (session.envelope.rcptTo.length >= max) return cb(smtpError(452, `Too many recipients: at most ${max} per message`));
      cb();
    },
    onData(stream, session, cb) {
      const user = userOf(session);
      const s = opts.settings();
      const maxBytes = Math.round(s.maxMessageMb * MB);
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (c: Buffer) => {
        bytes += c.length;
        // Past the limit nothing more is kept in memory; the whole message is refused at its end.
        if (bytes <= maxBytes) chunks.push(c);
      });
      stream.on('error', (err) => cb(err));
      stream.on('end', () => {
        if (stream.sizeExceeded || bytes > maxBytes) return cb(smtpError(552, `Message too big: at most ${s.maxMessageMb} MB`));
        if (!user) return cb(smtpError(530, 'Authentication required'));
        const raw = Buffer.concat(chunks);
        void store(user, session, raw, s).then(
          (id) => {
            recent.get(user.environmentId)?.push(Date.now());
            cb(null, `Caught as mail ${id}; not delivered`);
          },
          (err) => {
            log(`mail catcher: a mail for ${user.username} was not stored: ${(err as Error).message}`);
            cb(smtpError(451, 'The mail could not be stored; try again later'));
          },
        );
      });
    },
  });
  // A client that drops its connection or speaks nonsense is its own problem, not the server's.
  server.on('error', (err) => log(`mail catcher: ${(err as Error).message}`));

  async function store(user: CatcherUser, session: SMTPServerSession, raw: Buffer, s: MailCatcherSettings): Promise<number> {
    const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
    const text = (a: unknown) => (a ? (Array.isArray(a) ? a : [a]).map((x: { text?: string }) => x.text ?? '').join(', ') : '');
    const sent = parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date : null;
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const { rows } = await pool.query('select ops.store_mail($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) as id', [
      user.environmentId, from, session.envelope.rcptTo.map((r) => r.address), text(parsed.from), text(parsed.to),
      parsed.subject ?? '', sent, parsed.attachments.filter((a) => a.contentDisposition !== 'inline').length, raw,
      s.keepDays, s.keepMails, s.keepMb * MB,
    ]);
    return Number(rows[0].id);
  }

  const inner = (server as unknown as { server: Server }).server;
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    inner.once('error', reject);
    server.listen(port, first.host, () => {
      inner.off('error', reject);
      resolve();
    });
  });
  if (first.port === undefined && opts.lastPort) {
    await listen(opts.lastPort).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') throw err;
      log(`mail catcher: port ${opts.lastPort}, where it listened before, is taken; listening on another. Staging and development environments neutralized before send to the old port until they are cloned or restored again (a fixed port: the registry's mailCatcher.port)`);
      await listen(0);
    });
  } else {
    await listen(first.port ?? 0);
  }
  const { address, port } = (server as unknown as { server: Server }).server.address() as AddressInfo;
  // Age-based retention for environments that receive nothing more.
  const expire = setInterval(() => void pool.query('select ops.expire_mails($1)', [opts.settings().keepDays]).catch(() => {}), 3_600_000);
  expire.unref();
  return {
    host: address,
    port,
    stop: () => {
      clearInterval(expire);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The address that reaches a listening socket from this machine (a wildcard one is reached on the loopback). */
export function reachableAddress(host: string, port: number): { host: string; port: number } {
  return { host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port };
}
