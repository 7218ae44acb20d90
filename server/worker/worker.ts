// The worker: claims queued runs with FOR UPDATE SKIP LOCKED (ops.claim_run), woken by LISTEN/NOTIFY
// on ops_runs rather than by a polling loop, renews its lease while a run executes, sweeps expired
// leases at start and periodically, and on shutdown finishes or gives back what it holds.
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { isBuiltinKind, RUN_PARAMS, runParamsProblems } from '../../contract/run-params.ts';
import type { BackupCatalog, BackupRow, Executor, EnvironmentRow, ProjectRow, RunInfra, RunRow } from './executor.ts';
import { RunFailure } from './executor.ts';
import type { GitHubFeedback } from '../github/feedback.ts';
import { BackupManifest } from '../../contract/index.ts';
import { backupPrefixOf } from '../odoo/backup-writer.ts';
import { LogBatcher } from './log-batcher.ts';
import { DEFAULT_BACKUP_STORE, Infrastructure, InfraError } from '../infra/registry.ts';
import { replicateBackup } from '../storage/replicate.ts';
import { resolveStores, storesHolding } from '../storage/store-of.ts';
import { AlertDispatcher } from '../alerts/dispatcher.ts';
import type { DeliveryOptions } from '../alerts/deliver.ts';
import { OdooLogs } from './odoo-logs.ts';
import { mailSecretHash, mailUser, newMailSecret } from '../mail/login.ts';

export interface WorkerOptions {
  pool: pg.Pool;
  /** Connection string for the dedicated LISTEN connection (a pooled client cannot hold LISTEN). */
  databaseUrl: string;
  executors: Executor<any>[];
  id?: string;
  /** Runs executed at the same time by this worker (always on different environments). */
  concurrency?: number;
  leaseSeconds?: number;
  /** How often expired leases are looked for; also a safety net for a notification lost in a reconnect. */
  sweepIntervalMs?: number;
  /**
   * The operator's infrastructure registry, read by this worker from its own file: the only source of
   * the hosts, paths, binaries and secrets runs use. Empty when omitted (runs that need any fail).
   */
  infra?: Infrastructure;
  /** The worker's own files (checkouts, Odoo processes); a temporary directory by default. */
  workDir?: string;
  github?: GitHubFeedback | null;
  log?: (message: string) => void;
  /** How alerts are sent (timeouts, retries); the defaults are 10 s and one retry after 2 s. */
  alertDelivery?: DeliveryOptions;
  /** How often followed Odoo logs are looked for and their tails renewed (server/worker/odoo-logs.ts). */
  odooLogCheckMs?: number;
}

type StopReason = 'cancel' | 'lost' | 'shutdown';

interface Active {
  run: RunRow;
  controller: AbortController;
  done: Promise<void>;
}

/**
 * A project's content lock in a store: a session advisory lock on a connection of its own, so a worker
 * that dies (its session ends) releases it. Shared for backups, exclusive (never waiting) for sweeps.
 */
async function contentLock(pool: pg.Pool, projectId: string, storeNames: string[], mode: 'shared' | 'try-exclusive'): Promise<(() => Promise<void>) | null> {
  // Sorted: two holders of several stores' locks take them in one order (no deadlock).
  const keys = [...new Set(storeNames)].sort().map((name) => `odooops:content:${projectId}:${name}`);
  const c = await pool.connect();
  try {
    if (mode === 'shared') for (const key of keys) await c.query('select pg_advisory_lock_shared(hashtextextended($1, 0))', [key]);
    else if (!(await c.query('select pg_try_advisory_lock(hashtextextended($1, 0)) as ok', [keys[0]])).rows[0].ok) {
      c.release();
      return null;
    }
  } catch (err) {
    c.release(err as Error);
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    try {
      if (mode === 'shared') for (const key of keys) await c.query('select pg_advisory_unlock_shared(hashtextextended($1, 0))', [key]);
      else await c.query('select pg_advisory_unlock(hashtextextended($1, 0))', [keys[0]]);
      c.release();
    } catch (err) {
      // Not returned to the pool holding the lock: closing the session releases it.
      c.release(err as Error);
    }
  };
}

export class Worker {
  readonly id: string;
  private readonly opts: Required<Omit<WorkerOptions, 'id' | 'executors' | 'infra' | 'alertDelivery' | 'odooLogCheckMs'>>;
  /** Delivers the alerts runs and the scheduler raise (ops.alerts) to the channels of the registry. */
  readonly alerts: AlertDispatcher;
  private infra: Infrastructure;
  /** Paths of the operator's a run's log shows by name instead (SECURITY.md: logs do not reveal the worker's paths). */
  private pathAliases: [string, string][] = [];
  private readonly executors: Map<string, Executor<any>>;
  private readonly active = new Map<number, Active>();
  private listener: pg.Client | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;
  private dirty = false;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: WorkerOptions) {
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.executors = new Map(opts.executors.map((e) => [e.kind, e]));
    this.opts = {
      pool: opts.pool,
      databaseUrl: opts.databaseUrl,
      concurrency: opts.concurrency ?? 2,
      leaseSeconds: opts.leaseSeconds ?? 30,
      sweepIntervalMs: opts.sweepIntervalMs ?? 15_000,
      workDir: opts.workDir ?? join(tmpdir(), 'odooops-worker'),
      github: opts.github ?? null,
      log: opts.log ?? (() => {}),
    };
    this.infra = opts.infra ?? Infrastructure.load(null);
    this.setInfrastructure(this.infra);
    this.alerts = new AlertDispatcher({ pool: opts.pool, workerId: this.id, infra: () => this.infra, log: this.opts.log, delivery: opts.alertDelivery });
    this.odooLogs = new OdooLogs({
      pool: opts.pool, workerId: this.id, workDir: this.opts.workDir, infra: () => this.infra, aliases: () => this.pathAliases,
      log: this.opts.log, checkMs: opts.odooLogCheckMs,
    });
  }

  /** Tails the running Odoo logs members follow (issue 17). */
  readonly odooLogs: OdooLogs;

  /** A new registry (the operator changed the file): runs claimed from now on resolve with it. */
  setInfrastructure(infra: Infrastructure): void {
    this.infra = infra;
    this.pathAliases = [
      [this.opts.workDir, '<work>'],
      ...infra.paths(),
    ];
  }

  /** The registry as one run may use it: bound to the run's project, its passwords hidden from the log. */
  private runInfra(run: RunRow, project: ProjectRow, logs: LogBatcher): RunInfra {
    const infra = this.infra;
    const own = (env: EnvironmentRow) => {
      if (env.project_id !== run.project_id) throw new InfraError(`environment ${env.name} is not of this run's project`);
      return env;
    };
    return {
      database: (env) => {
        const d = infra.database(own(env).db_server, env.db_name, project.slug);
        logs.redact(d.password);
        return { host: d.host, port: d.port, user: d.user, password: d.password, database: d.database };
      },
      filestore: (env) => infra.filestore(own(env).filestore_root, env.db_name, project.slug),
      runtime: (env) => infra.runtime(own(env).runtime, project.slug),
      repository: (url) => infra.repository(url, project.slug),
      secret: (name) => {
        const value = infra.secret(name, project.slug);
        logs.redact(value);
        return value;
      },
      describe: (env) => `${env.db_name} on the database server ${env.db_server ?? '(none)'}`,
    };
  }

  private catalog(run: RunRow, project: ProjectRow, logs: LogBatcher, signal: AbortSignal): BackupCatalog {
    const { pool } = this.opts;
    const infra = this.infra;
    // Credentials and keys the stores are made with: the run's log shows [redacted] in their place.
    const resolve = (name: string) => infra.backupStore(name, project.slug, (secret) => logs.redact(secret));
    const primaryName = project.backup_store ?? DEFAULT_BACKUP_STORE;
    const store = () => resolve(primaryName);
    const configured = () => [primaryName, ...(project.backup_copy ? [project.backup_copy] : [])];
    const toRow = (r: Record<string, any>, manifest: BackupManifest) => ({ ...r, size_bytes: Number(r.size_bytes), manifest }) as BackupRow;
    const storesOf = async (b: BackupRow) => (await storesHolding(b.stores ?? [DEFAULT_BACKUP_STORE], resolve, b.manifest)).stores;
    return {
      get store() {
        return store();
      },
      storesOf,
      namedStores: (b) => resolveStores(b.stores ?? [DEFAULT_BACKUP_STORE], resolve),
      storeOf: async (b) => {
        const { stores, problems } = await storesHolding(b.stores ?? [DEFAULT_BACKUP_STORE], resolve, b.manifest);
        if (stores[0]) return stores[0];
        throw new Error(`backup ${b.id} cannot be read from any of its stores: ${problems.join('; ')}; restore another backup, or ask the operator whether the store moved`);
      },
      get uploads() {
        return resolve(DEFAULT_BACKUP_STORE);
      },
      manualToday: async () => (await pool.query('select ops.manual_backups_today($1) as n', [run.environment_id])).rows[0].n as number,
      record: async (kind, key, size, sha256, manifest) => {
        const primary = store();
        const stores = [primary.name];
        if (project.backup_copy) {
          // A backup counts only once every configured store holds all of it: the copy is made before the row.
          const copyName = project.backup_copy;
          await logs.log(`copying the backup to the store "${copyName}", checking every part read back from "${primary.name}"`, 'stdout');
          const started = Date.now();
          try {
            const done = await replicateBackup(primary, resolve(copyName), manifest, { manifestSha256: sha256, signal });
            await logs.log(`copied to "${copyName}": ${done.objects} objects, ${(done.bytes / 1048576).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s` +
              `${done.contentsCopied || done.contentsPresent ? ` (${done.contentsCopied} filestore files copied, ${done.contentsPresent} were there already)` : ''}`, 'stdout');
          } catch (err) {
            // The writer removes the backup from the first store when this throws: nothing half-copied is ever listed as good.
            throw new Error(`the copy of the backup to the store "${copyName}" failed (${(err as Error).message}); the backup in "${primary.name}" is removed too, so no backup that lacks its copy is listed as good; ` +
              `run the backup again once "${copyName}" works (odooops infra check shows whether it can be reached)`);
          }
          stores.push(copyName);
        }
        return (await pool.query('select ops.record_backup($1, $2, $3, $4, $5, $6, $7, $8) as id', [run.id, this.id, kind, primary.locationOf(key), size, sha256, manifest, stores])).rows[0].id as string;
      },
      list: async () => {
        const { rows } = await pool.query(
          `select b.*, e.stage from ops.backups b join ops.environments e on e.id = b.environment_id
           where b.environment_id = $1 order by b.created_at desc`,
          [run.environment_id],
        );
        return rows.map((r) => toRow(r, BackupManifest.parse(r.manifest)));
      },
      remove: async (b) => {
        // From every store that holds it; the row goes only when none is left holding part of it.
        const { stores, problems } = resolveStores(b.stores ?? [DEFAULT_BACKUP_STORE], resolve);
        for (const s of stores) await s.remove(backupPrefixOf(b.manifest));
        if (problems.length) throw new Error(`backup ${b.id} could not be removed from every store: ${problems.join('; ')}; it stays listed until it can be`);
        await pool.query('select ops.delete_backup($1, $2, $3)', [run.id, this.id, b.id]);
      },
      removeAbandoned: async () => {
        const envPrefix = `${run.project_id}/${run.environment_id}`;
        // By key, not location: a store moved to another directory keeps its keys, and its backups.
        let rows: { location: string; dump_key: string }[] | undefined;
        const recorded = (prefix: string) => rows!.some((r) => r.dump_key === `${prefix}/dump.pgc` || String(r.location).endsWith(`/${prefix}`));
        const removed: string[] = [];
        for (const name of configured()) {
          let names: string[];
          try {
            names = await resolve(name).list(envPrefix);
          } catch (err) {
            // The copy store down must not stop the backup before the copy says so; the primary's must.
            if (name === primaryName) throw err;
            await logs.log(`could not look for unfinished backups in the store "${name}": ${(err as Error).message.split('\n')[0]}`, 'stderr');
            continue;
          }
          if (names.length === 0) continue;
          rows ??= (await pool.query(`select location, manifest #>> '{dump,key}' as dump_key from ops.backups where environment_id = $1`, [run.environment_id])).rows;
          for (const n of names) {
            const prefix = `${envPrefix}/${n}`;
            // backupPrefix names every backup's prefix for the run that writes it: <time>-run<id>[-clone].
            const m = /-run(\d+)(-[a-z]+)?$/.exec(n);
            if (!m || recorded(prefix)) continue;
            const writer = Number(m[1]);
            // This run writes one backup at a time and sweeps before it starts one: a prefix of its own is an
            // earlier attempt's. Another run's is left while that run may still come back to it (queued again).
            if (writer !== run.id && (await pool.query(`select 1 from ops.runs where id = $1 and status in ('queued', 'running')`, [writer])).rowCount) continue;
            await resolve(name).remove(prefix);
            removed.push(name === primaryName ? prefix : `${prefix} (in "${name}")`);
          }
        }
        // Uploads a killed writer left unfinished (S3 multipart uploads: no object, but parts the service
        // keeps; a local store's .partial files). Under the environment's prefix, those of backups whose run
        // may still come back to them are left, as above; the project's file objects are written by backups
        // of every environment, so there only uploads older than a day go unless no backup holds the lock.
        const active = new Set((await pool.query(`select id from ops.runs where project_id = $1 and id <> $2 and status in ('queued', 'running')`, [run.project_id, run.id])).rows.map((r) => Number(r.id)));
        const stillWritten = (key: string) => {
          const writer = /-run(\d+)(-[a-z]+)?\//.exec(key);
          return !!writer && active.has(Number(writer[1]));
        };
        let uploads = 0;
        for (const name of configured()) {
          const store = resolve(name);
          if (!store.abortIncompleteUploads) continue;
          try {
            let n = await store.abortIncompleteUploads(envPrefix, new Date(), stillWritten);
            // The project's file objects: every unfinished upload when no backup of the project is writing
            // (the content lock, exclusive, not waited for), otherwise only those older than a day.
            const exclusive = await contentLock(pool, run.project_id, [name], 'try-exclusive');
            try {
              n += await store.abortIncompleteUploads(`${run.project_id}/files`, exclusive ? new Date() : new Date(Date.now() - 86_400_000));
            } finally {
              await exclusive?.();
            }
            uploads += n;
          } catch (err) {
            if (name === primaryName) throw err;
            await logs.log(`could not end unfinished uploads in the store "${name}": ${(err as Error).message.split('\n')[0]}`, 'stderr');
          }
        }
        return { prefixes: removed, uploads };
      },
      projectBackups: async () => {
        const { rows } = await pool.query(
          `select b.*, e.stage from ops.backups b join ops.environments e on e.id = b.environment_id
           where b.project_id = $1 order by b.created_at desc`,
          [run.project_id],
        );
        return rows.map((r) => ({ ...r, size_bytes: Number(r.size_bytes), manifest: BackupManifest.parse(r.manifest) }) as BackupRow);
      },
      // Every store the backup goes to: its copy is written (objects found present there skipped) before the row.
      holdContent: () => contentLock(pool, run.project_id, configured(), 'shared') as Promise<() => Promise<void>>,
      tryContentSweep: (s) => contentLock(pool, run.project_id, [(s ?? store()).name], 'try-exclusive'),
      get configuredStores() {
        return configured().map(resolve);
      },
      get: async (id) => {
        const { rows } = await pool.query(
          `select b.*, e.stage from ops.backups b join ops.environments e on e.id = b.environment_id
           where b.id = $1 and b.project_id = $2`,
          [/^[0-9a-f-]{36}$/i.test(id) ? id : '00000000-0000-0000-0000-000000000000', run.project_id],
        );
        if (!rows[0]) throw new Error(`backup ${id} does not exist in this project`);
        const parsed = BackupManifest.safeParse(rows[0].manifest);
        if (!parsed.success) throw new Error(`backup ${id} has no valid manifest; it cannot be restored`);
        return toRow(rows[0], parsed.data);
      },
    };
  }

  get kinds(): string[] {
    return [...this.executors.keys()];
  }

  get running(): number[] {
    return [...this.active.keys()];
  }

  async start(): Promise<void> {
    await this.opts.pool.query('select ops.register_run_kinds($1)', [
      JSON.stringify([...this.executors.values()].map((e) => ({ kind: e.kind, description: e.description }))),
    ]);
    await this.listen();
    await this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep().then(() => (this.wake(), this.alerts.wake())), this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
    this.wake();
    this.alerts.wake();
    this.odooLogs.start();
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.databaseUrl, application_name: `odooops-worker ${this.id}` });
    client.on('notification', (n) => {
      if (n.channel === 'ops_cancel') {
        // A member cancelled a running run: stop it now rather than at the next heartbeat.
        const entry = this.active.get(Number(n.payload));
        if (entry && !entry.controller.signal.aborted) entry.controller.abort('cancel');
        return;
      }
      if (n.channel === 'ops_alerts') return this.alerts.wake();
      if (n.channel === 'ops_odoo_log') return this.odooLogs.wake();
      this.wake();
    });
    client.on('error', (err) => {
      if (this.stopping) return;
      this.opts.log(`worker ${this.id}: lost its LISTEN connection (${err.message}); reconnecting`);
      this.scheduleReconnect();
    });
    client.on('end', () => {
      if (!this.stopping && this.listener === client) this.scheduleReconnect();
    });
    await client.connect();
    await client.query('listen ops_runs; listen ops_cancel; listen ops_alerts; listen ops_odoo_log');
    this.listener = client;
  }

  private scheduleReconnect(delay = 500): void {
    if (this.reconnectTimer || this.stopping) return;
    this.listener = undefined;
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = undefined;
      try {
        await this.listen();
        this.wake(); // whatever was queued while we were deaf
      } catch {
        this.scheduleReconnect(Math.min(delay * 2, 10_000));
      }
    }, delay);
  }

  /** Recovers runs whose lease expired (their worker died). */
  async sweep(): Promise<number> {
    try {
      const { rows } = await this.opts.pool.query('select ops.recover_expired_runs() as n');
      const n = rows[0].n as number;
      if (n > 0) this.opts.log(`worker ${this.id}: recovered ${n} run(s) with an expired lease`);
      return n;
    } catch (err) {
      this.opts.log(`worker ${this.id}: lease sweep failed: ${(err as Error).message}`);
      return 0;
    }
  }

  /** Something changed in the queue: claim while there is room. Bursts of wake-ups coalesce. */
  wake(): void {
    this.dirty = true;
    this.filling ??= this.fill().finally(() => {
      this.filling = undefined;
      // A wake-up that landed between the loop's last check and here must not be lost.
      if (this.dirty && !this.stopping) this.wake();
    });
  }

  private async fill(): Promise<void> {
    try {
      while (this.dirty && !this.stopping) {
        this.dirty = false;
        while (!this.stopping && this.active.size < this.opts.concurrency) {
          const run = await this.claim();
          if (!run) break;
          this.startRun(run);
        }
      }
    } catch (err) {
      this.opts.log(`worker ${this.id}: claim failed: ${(err as Error).message}`);
      setTimeout(() => this.wake(), 1000).unref();
    }
  }

  private async claim(): Promise<RunRow | undefined> {
    const { rows } = await this.opts.pool.query('select * from ops.claim_run($1, $2, $3)', [this.id, this.opts.leaseSeconds, this.kinds]);
    return rows[0] as RunRow | undefined;
  }

  private startRun(run: RunRow): void {
    const controller = new AbortController();
    const entry: Active = { run, controller, done: Promise.resolve() };
    entry.done = this.execute(run, controller)
      .then(
        // The run's finish may have claimed this worker's next run: it takes the freed slot.
        (next) => {
          if (next) this.startRun(next);
        },
        (err) => this.opts.log(`worker ${this.id}: run ${run.id} could not be finished: ${(err as Error).message}`),
      )
      .finally(() => {
        this.active.delete(run.id);
        if (this.active.size === 0) this.idleWaiters.splice(0).forEach((w) => w());
        this.wake();
        // If this worker filled up again with other runs, the next run of the environment just freed
        // is for another worker: tell them (the finish itself does not notify, see ops.notify_run_change).
        // At most one such message per 100 ms: a NOTIFY takes a database-wide lock, even briefly.
        void this.filling?.then(() => {
          if (this.active.size >= this.opts.concurrency && !this.stopping) this.announceFreed(run.environment_id);
        });
      });
    this.active.set(run.id, entry);
  }

  private freed = new Set<string>();
  private freedTimer: NodeJS.Timeout | undefined;

  private announceFreed(environmentId: string): void {
    this.freed.add(environmentId);
    this.freedTimer ??= setTimeout(async () => {
      const envs = [...this.freed];
      this.freed.clear();
      this.freedTimer = undefined;
      if (this.stopping) return;
      await this.opts.pool.query('select ops.notify_waiting(e) from unnest($1::uuid[]) e', [envs]).catch(() => {});
    }, 100);
  }

  /** Executes a run to its end; returns the next run when the finish claimed one for this worker. */
  private async execute(run: RunRow, controller: AbortController): Promise<RunRow | undefined> {
    const { pool } = this.opts;
    const logs = new LogBatcher(pool, run.id, this.id);
    const reason = () => controller.signal.reason as StopReason | undefined;
    let renewed = Date.now();
    const heartbeat = setInterval(async () => {
      try {
        const { rows } = await pool.query('select ops.heartbeat_run($1, $2, $3) as state', [run.id, this.id, this.opts.leaseSeconds]);
        if (rows[0].state === 'ok') renewed = Date.now();
        else if (!controller.signal.aborted) controller.abort(rows[0].state as StopReason);
      } catch (err) {
        // A missed heartbeat is survivable until the lease runs out; the sweep decides after that.
        this.opts.log(`worker ${this.id}: heartbeat for run ${run.id} failed: ${(err as Error).message}`);
        // Past the lease the run may be another worker's next attempt, which removes what this one is
        // building (the side copies carry the run's id): stop rather than work beside it.
        if (Date.now() - renewed > this.opts.leaseSeconds * 1000 && !controller.signal.aborted) controller.abort('lost' satisfies StopReason);
      }
    }, Math.max(200, (this.opts.leaseSeconds * 1000) / 3));

    let status: 'succeeded' | 'failed' | 'cancelled' = 'succeeded';
    let error: string | null = null;
    let result: unknown = null;
    try {
      const executor = this.executors.get(run.kind);
      if (!executor) throw new Error(`this worker has no executor for "${run.kind}"`);
      for (const [path, label] of this.pathAliases) logs.alias(path, label);
      // The environment and its project in one round trip (the project names the registry's bindings).
      const { rows } = await pool.query(
        'select e.*, to_jsonb(p) as project_row from ops.environments e join ops.projects p on p.id = e.project_id where e.id = $1', [run.environment_id]);
      const { project_row: project, ...environment } = rows[0] as EnvironmentRow & { project_row: ProjectRow };
      const parsed = executor.params.safeParse(run.params);
      if (!parsed.success) {
        // A built-in kind's refusal reads as the API's would have (a run queued in SQL skips the API).
        const said = isBuiltinKind(run.kind) && RUN_PARAMS[run.kind] === executor.params ? runParamsProblems(run.kind, run.params) : null;
        throw new Error(`invalid params for ${run.kind}: ${(said ?? parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`)).join('; ')}`);
      }
      await logs.log(`${run.kind} on ${environment.name} (${environment.stage}), attempt ${run.attempts} of ${run.max_attempts}, worker ${this.id}`, 'system');
      result = await executor.execute({
        run,
        environment,
        params: parsed.data,
        log: (line, stream = 'stdout') => logs.log(line, stream),
        signal: controller.signal,
        infra: this.runInfra(run, project, logs),
        redact: (value) => logs.redact(value),
        backups: this.catalog(run, project, logs, controller.signal),
        runIsActive: async (id) => (await pool.query(`select 1 from ops.runs where id = $1 and status = 'running'`, [id])).rowCount === 1,
        project: async () => project,
        workDir: this.opts.workDir,
        recordCloneLogin: async ({ logins, password, secret }) =>
          void (await pool.query('select ops.record_clone_login($1, $2, $3, $4, $5)', [run.id, this.id, logins, password, secret])),
        setDeployedRevision: async (revision) => void (await pool.query('select ops.set_deployed_revision($1, $2, $3)', [run.id, this.id, revision])),
        archive: async () => (await pool.query('select ops.archive_environment($1, $2) as name', [run.id, this.id])).rows[0].name as string,
        github: this.opts.github,
        issueMailLogin: async () => {
          const at = this.infra.mailCatcherAddress();
          if (!at) return null;
          if (environment.stage === 'production') throw new Error(`${environment.name} is a production environment: its mail is real, it gets no mail catcher login`);
          const password = newMailSecret();
          logs.redact(password);
          const user = mailUser(project.slug, environment.name);
          await pool.query('select ops.issue_mail_credential($1, $2, $3, $4)', [run.id, this.id, user, mailSecretHash(password)]);
          return { ...at, user, password, maxMessageMb: this.infra.mailCatcherSettings().maxMessageMb };
        },
        otherEnvironment: async (name) => {
          const { rows } = await pool.query(
            `select * from ops.environments where project_id = $1 and ${name === undefined ? `stage = 'production'` : 'name = $2'} order by name`,
            name === undefined ? [run.project_id] : [run.project_id, name],
          );
          if (rows.length === 0) throw new Error(name === undefined ? 'this project has no production environment' : `environment "${name}" does not exist in this project`);
          if (rows.length > 1) throw new Error(`this project has ${rows.length} production environments (${rows.map((r) => r.name).join(', ')}); name the source`);
          return rows[0] as EnvironmentRow;
        },
      });
      if (controller.signal.aborted) throw new Error(String(reason()));
    } catch (err) {
      if (reason() === 'cancel') {
        status = 'cancelled';
        error = 'cancelled by a member';
      } else {
        status = 'failed';
        if (err instanceof RunFailure) result = err.result;
        // The error is stored on the run and broadcast with its state: no secrets in it either.
        error = logs.redactor.apply((err as Error)?.message ?? String(err));
        if (!controller.signal.aborted) await logs.log(`failed: ${error}`, 'stderr');
      }
    } finally {
      clearInterval(heartbeat);
    }

    const lastLines = await logs.takeRemaining();
    if (logs.lost || reason() === 'lost') {
      this.opts.log(`worker ${this.id}: lost the lease of run ${run.id}; leaving it to the sweep`);
      return undefined;
    }
    if (reason() === 'shutdown') {
      await pool.query('select ops.append_run_logs($1, $2, $3)', [run.id, this.id, JSON.stringify(lastLines)]);
      await pool.query('select ops.release_run($1, $2, $3)', [run.id, this.id, 'the worker shut down before the run finished']);
      return undefined;
    }
    const args = [run.id, this.id, status, error, result === undefined ? null : JSON.stringify(result), JSON.stringify(lastLines)];
    if (this.stopping) {
      await pool.query('select ops.finish_run($1, $2, $3, $4, $5, $6)', args);
      return undefined;
    }
    const { rows } = await pool.query('select * from ops.finish_and_claim($1, $2, $3, $4, $5, $6, $7, $8)', [
      ...args, this.opts.leaseSeconds, this.kinds,
    ]);
    return rows[0] as RunRow | undefined;
  }

  /**
   * Stops claiming, lets running runs finish for up to graceMs, then aborts them and gives them back
   * to the queue (they do not count as an attempt), and closes the LISTEN connection.
   */
  async stop(graceMs = 20_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.freedTimer);
    // A claim may be in flight: its run must get the same grace and release as the others.
    await this.filling;
    if (this.active.size > 0) {
      this.opts.log(`worker ${this.id}: waiting up to ${Math.round(graceMs / 1000)} s for ${this.active.size} run(s) to finish`);
      const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
      if ((await Promise.race([idle, timeout])) === 'timeout') {
        for (const a of this.active.values()) a.controller.abort('shutdown' satisfies StopReason);
        await Promise.all([...this.active.values()].map((a) => a.done));
      }
    }
    await this.odooLogs.stop();
    // Deliveries under way finish within the grace too; one cut short is delivered again once its claim lapses.
    await Promise.race([this.alerts.stop(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
  }
}
