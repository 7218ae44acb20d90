// Sends one alert to one channel of the registry: a webhook (JSON, signed like GitHub's webhooks:
// X-OdooOps-Signature: sha256=<HMAC-SHA256 of the body>) or mail through an SMTP server (nodemailer).
// Each try is bounded (10 s), a failed one is tried again after a pause, and what is recorded says
// what happened without the channel's URL, host or secrets: members read it.
import { createHmac } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { AlertDelivery } from '../../contract/index.ts';
import type { ResolvedAlertChannel } from '../infra/registry.ts';

export interface AlertToSend {
  id: number;
  project: string;
  environment: string | null;
  kind: string;
  title: string;
  message: string;
  runId: number | null;
  createdAt: string;
}

export interface DeliveryOptions {
  /** Each try's limit; 10 s by default. */
  timeoutMs?: number;
  /** Tries after the first; 1 by default. */
  retries?: number;
  /** The pause before the first retry, doubled for each next one; 2 s by default. */
  backoffMs?: number;
}

/** A failure that is worth telling members, in words that name no host, URL or secret. */
class DeliveryError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** The webhook's body: the alert as the API lists it (contract Alert, without its deliveries). */
export function webhookBody(a: AlertToSend): string {
  return JSON.stringify({
    event: 'alert', id: a.id, project: a.project, environment: a.environment, kind: a.kind, title: a.title,
    message: a.message, runId: a.runId, createdAt: a.createdAt,
  });
}

/** The signature header's value for a body and a key (what a receiver recomputes and compares). */
export const signature = (body: string, secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

async function postWebhook(ch: Extract<ResolvedAlertChannel, { kind: 'webhook' }>, a: AlertToSend, timeoutMs: number): Promise<number> {
  const body = webhookBody(a);
  let res: Response;
  try {
    res = await fetch(ch.url, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'OdooOps-Alerts',
        'x-odooops-event': 'alert',
        'x-odooops-delivery': String(a.id),
        ...(ch.secret ? { 'x-odooops-signature': signature(body, ch.secret) } : {}),
      },
      // A redirect could lead the worker anywhere inside the operator's network: only the declared URL.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer().catch(() => {});
  } catch (err) {
    throw new DeliveryError(networkError(err, timeoutMs));
  }
  if (res.status < 200 || res.status > 299) {
    throw new DeliveryError(res.status >= 300 && res.status < 400 ? `the webhook answered a redirect (HTTP ${res.status}), which is not followed` : `the webhook answered HTTP ${res.status}`, res.status);
  }
  return res.status;
}

async function sendMail(ch: Extract<ResolvedAlertChannel, { kind: 'smtp' }>, a: AlertToSend, to: string[], timeoutMs: number): Promise<number | undefined> {
  if (to.length === 0) throw new DeliveryError('no recipient addresses: a project admin adds them (odooops project alerts PROJECT --channel NAME --email ADDRESS)');
  const transport = nodemailer.createTransport({
    host: ch.host, port: ch.port, secure: ch.secure,
    // A password crosses the network only encrypted: without implicit TLS, STARTTLS is required (a server,
    // or someone on the way, that does not offer it gets no AUTH), except to this machine.
    requireTLS: !ch.secure && !!ch.user && !/^(localhost|127\.\d+\.\d+\.\d+|::1)$/.test(ch.host),
    ...(ch.user ? { auth: { user: ch.user, pass: ch.password ?? '' } } : {}),
    connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs,
  });
  try {
    const info = await transport.sendMail({
      from: ch.from, to,
      subject: `[OdooOps] ${a.project}: ${a.title}`,
      text: `${a.message}\n\nProject: ${a.project}\nEnvironment: ${a.environment ?? '-'}\nRun: ${a.runId ?? '-'}\nAt: ${a.createdAt}\n`,
      headers: { 'X-OdooOps-Alert': String(a.id) },
    });
    const code = /^(\d{3})/.exec(String(info.response ?? ''))?.[1];
    return code ? Number(code) : undefined;
  } catch (err) {
    const e = err as { code?: string; responseCode?: number };
    const why: Record<string, string> = {
      EAUTH: 'the mail server refused the login',
      EENVELOPE: 'the mail server refused the sender or the recipients',
      EMESSAGE: 'the mail server refused the message',
      ETIMEDOUT: `the mail server did not answer within ${timeoutMs / 1000} s`,
      ESOCKET: 'the connection to the mail server failed',
      ECONNECTION: 'the connection to the mail server failed',
      ETLS: 'TLS with the mail server failed',
    };
    throw new DeliveryError(`${why[e.code ?? ''] ?? networkError(err, timeoutMs)}${e.responseCode ? ` (SMTP ${e.responseCode})` : ''}`, e.responseCode);
  } finally {
    transport.close();
  }
}

/** Why a connection failed, by its error code only (messages name hosts and addresses). */
function networkError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  const code = e.cause?.code ?? e.code;
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return `no answer within ${timeoutMs / 1000} s`;
  const known: Record<string, string> = {
    ECONNREFUSED: 'the connection was refused', ENOTFOUND: 'the host name does not resolve', ECONNRESET: 'the connection was reset',
    EHOSTUNREACH: 'the host is unreachable', ENETUNREACH: 'the network is unreachable', CERT_HAS_EXPIRED: 'its TLS certificate has expired',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is not trusted', SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate is not trusted',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate is not trusted', ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate names another host',
  };
  return known[code ?? ''] ?? `delivery failed${code ? ` (${code})` : ''}`;
}

/**
 * Delivers an alert to a channel, trying again with backoff; never throws: the result is recorded.
 * `detail` receives the full error for the worker's own log.
 */
export async function deliver(ch: ResolvedAlertChannel, a: AlertToSend, emails: string[], o: DeliveryOptions = {}, detail: (m: string) => void = () => {}): Promise<AlertDelivery> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const tries = 1 + (o.retries ?? 1);
  let wait = o.backoffMs ?? 2000;
  let last: DeliveryError | undefined;
  for (let attempt = 1; attempt <= tries; attempt++) {
    try {
      const status = ch.kind === 'webhook' ? await postWebhook(ch, a, timeoutMs) : await sendMail(ch, a, emails, timeoutMs);
      return { channel: ch.name, kind: ch.kind, ok: true, attempts: attempt, ...(status !== undefined ? { status } : {}), at: new Date().toISOString() };
    } catch (err) {
      last = err instanceof DeliveryError ? err : new DeliveryError('delivery failed');
      detail(`alert ${a.id} to channel ${ch.name}, try ${attempt} of ${tries}: ${(err as Error).message}`);
      // Nothing changes for a channel with no addresses: no point in asking again.
      if (ch.kind === 'smtp' && emails.length === 0) return failed(ch.name, ch.kind, attempt, last);
      if (attempt < tries) {
        await new Promise((r) => setTimeout(r, wait));
        wait *= 2;
      }
    }
  }
  return failed(ch.name, ch.kind, tries, last!);
}

const failed = (channel: string, kind: 'webhook' | 'smtp', attempts: number, err: DeliveryError): AlertDelivery => ({
  channel, kind, ok: false, attempts, ...(err.status !== undefined ? { status: err.status } : {}), error: err.message, at: new Date().toISOString(),
});
