// The worker's side of alerts: woken by NOTIFY ops_alerts (and by its periodic sweep, which also picks
// up what a dead worker had claimed), it claims undelivered alerts with a lease, sends each to the
// project's channels as this worker's registry resolves them, and records what every channel answered.
// A delivery that fails is recorded and logged; it never touches the run that raised the alert.
import type pg from 'pg';
import type { AlertDelivery } from '../../contract/index.ts';
import { InfraError, type Infrastructure } from '../infra/registry.ts';
import { deliver, type DeliveryOptions } from './deliver.ts';

export interface AlertDispatcherOptions {
  pool: pg.Pool;
  workerId: string;
  /** The worker's registry as it is now (reloaded on SIGHUP). */
  infra: () => Infrastructure;
  log: (m: string) => void;
  delivery?: DeliveryOptions;
  /** How long a claim holds; past it another worker delivers. */
  leaseSeconds?: number;
}

interface ClaimedAlert {
  id: number;
  project_slug: string;
  environment: string | null;
  kind: string;
  title: string;
  message: string;
  run_id: number | null;
  created_at: Date;
  channels: string[];
  emails: string[];
}

export class AlertDispatcher {
  private readonly o: AlertDispatcherOptions;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(o: AlertDispatcherOptions) {
    this.o = o;
  }

  /** Something may be waiting: deliver it (bursts coalesce into one pass, and one more after it). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .then(() => {}, (err) => this.o.log(`alerts: ${(err as Error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Waits for the deliveries under way; no new ones start. */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.running) await this.running;
  }

  /** One pass over what is undelivered now; returns how many alerts it delivered. */
  async pass(): Promise<number> {
    let done = 0;
    for (;;) {
      const { rows } = await this.o.pool.query('select * from ops.claim_alerts($1, $2, 10)', [this.o.workerId, this.o.leaseSeconds ?? 120]);
      if (rows.length === 0) return done;
      // Channels of different alerts at once; one alert's channels too (a slow mail server does not hold the webhook back).
      await Promise.all((rows as ClaimedAlert[]).map((a) => this.deliverOne(a)));
      done += rows.length;
      if (this.stopped) return done;
    }
  }

  private async deliverOne(a: ClaimedAlert): Promise<void> {
    const alert = {
      id: Number(a.id), project: a.project_slug, environment: a.environment, kind: a.kind, title: a.title, message: a.message,
      runId: a.run_id === null ? null : Number(a.run_id), createdAt: new Date(a.created_at).toISOString(),
    };
    const infra = this.o.infra();
    const results: AlertDelivery[] = await Promise.all(a.channels.map(async (name): Promise<AlertDelivery> => {
      let channel;
      try {
        channel = infra.alertChannel(name, a.project_slug);
      } catch (err) {
        // The registry changed since the admin chose it, or its secret is not on this worker.
        const why = err instanceof InfraError ? err.message : 'the channel cannot be used on this worker';
        this.o.log(`alerts: alert ${alert.id} of ${a.project_slug} not sent to ${name}: ${why}`);
        return { channel: name, kind: infra.file.alertChannels[name]?.kind ?? 'webhook', ok: false, attempts: 0, error: why, at: new Date().toISOString() };
      }
      const r = await deliver(channel, alert, a.emails, this.o.delivery, (m) => this.o.log(`alerts: ${m}`));
      if (!r.ok) this.o.log(`alerts: alert ${alert.id} of ${a.project_slug} could not be delivered to ${name} after ${r.attempts} tries: ${r.error}`);
      return r;
    }));
    await this.o.pool.query('select ops.record_alert_delivery($1, $2, $3)', [alert.id, this.o.workerId, JSON.stringify(results)]);
  }
}
