import { startServer, type ServerOptions } from '../app.ts';
import { MigrationError } from '../db/migrate.ts';
import { createPool } from '../db/session.ts';
import { TransactionPoolerError, assertSessionConnection } from '../db/session-check.ts';
import { loadExecutors } from '../worker/executors/index.ts';
import { Worker } from '../worker/worker.ts';
import { CliError, EXIT } from '../../client/api-client.ts';
import { homeFiles, odooopsHome, sharedDir } from '../paths.ts';
import { Infrastructure } from '../infra/registry.ts';
import { giveToRunUser, setupRunUser, shareWithRunUser } from '../infra/run-user.ts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const log = (m: string) => console.error(`[${new Date().toISOString()}] ${m}`);

/** Runs until SIGTERM/SIGINT, then shuts down in order: finish or release runs, then the database. */
export async function serve(what: 'server' | 'worker', opts: ServerOptions, graceMs = 20_000): Promise<number> {
  try {
    return await serveUntilSignal(what, opts, graceMs);
  } catch (err) {
    // Refusals the operator fixes (another URL, a grant, a migration file): one clear message, not a stack trace.
    if (err instanceof TransactionPoolerError) throw new CliError(err.reason, EXIT.usage, err.hint);
    if (err instanceof MigrationError) throw new CliError(err.message, EXIT.usage, err.hint);
    throw err;
  }
}

async function serveUntilSignal(what: 'server' | 'worker', opts: ServerOptions, graceMs: number): Promise<number> {
  let stop: (graceMs?: number) => Promise<void>;
  let reload: () => Promise<void>;
  if (what === 'worker') {
    if (!opts.databaseUrl) throw new CliError('odooops worker needs --database-url (the control plane it works for)', EXIT.usage);
    await assertSessionConnection(opts.databaseUrl); // the worker LISTENs: no transaction pooler
    const home = odooopsHome(opts.home);
    await setupRunUser(opts.runAs, log);
    // This worker resolves names with its own registry file (the server publishes the names to the control plane).
    const infraFile = opts.infraFile ?? process.env.ODOOOPS_INFRA ?? homeFiles(home).infrastructure;
    // Its own directory is the built-in store "default" (several workers share it only on a shared volume).
    const backupDir = opts.backupDir ?? homeFiles(home).backups;
    let infra = Infrastructure.load(infraFile, { backupDir });
    for (const w of infra.warnings) log(`registry: ${w}`);
    const workDir = opts.workDir ?? join(sharedDir(home), 'work');
    mkdirSync(backupDir, { recursive: true, mode: 0o750 });
    shareWithRunUser(backupDir);
    mkdirSync(workDir, { recursive: true, mode: 0o750 });
    giveToRunUser(workDir);
    const pool = createPool(opts.databaseUrl, 4);
    const worker = new Worker({
      pool, databaseUrl: opts.databaseUrl, executors: await loadExecutors(opts.executorModules ?? []), log,
      concurrency: opts.concurrency, leaseSeconds: opts.leaseSeconds, sweepIntervalMs: opts.sweepIntervalMs,
      infra, workDir,
    });
    await worker.start();
    log(`worker ${worker.id} ready for ${worker.kinds.join(', ')}; registry ${infraFile}: ${infra.entries().length} entries`);
    reload = async () => {
      infra = Infrastructure.load(infraFile, { backupDir });
      for (const w of infra.warnings) log(`registry: ${w}`);
      worker.setInfrastructure(infra);
      log(`registry ${infraFile} read again: ${infra.entries().length} entries`);
    };
    stop = async (grace) => {
      await worker.stop(grace);
      await pool.end();
    };
  } else {
    const server = await startServer({ ...opts, log });
    stop = server.stop;
    reload = server.reloadInfrastructure;
    console.log(`OdooOps server listening on ${server.url} (${server.mode} control plane${server.dataDir ? `, data in ${server.dataDir}` : ''})`);
    console.log(`  worker: ${server.worker ? `${server.worker.id}, run kinds: ${server.worker.kinds.join(', ')}` : 'off'}`);
    console.log(`  connect: the CLI and the VS Code extension find this server through ${server.home}/connection.json`);
    console.log(`  try:     npx odooops project list${opts.demo ? ' && npx odooops run queue demo production backup --follow' : ''}`);
    if (opts.demo) console.log('           npx odooops run queue demo dev-feature clone --follow   (a neutralized, masked copy of production)');
    console.log('  stop:    Ctrl+C (running runs finish or go back to the queue)');
  }
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: string) => {
      signals++;
      if (signals > 1) {
        log(`${sig} again: exiting now`);
        process.exit(130);
      }
      log(`${sig}: shutting down`);
      stop(graceMs).then(resolve, (err) => {
        log(`shutdown failed: ${(err as Error).message}`);
        resolve();
      });
    };
    // SIGHUP: the operator changed the registry file (as nginx reloads its configuration).
    process.on('SIGHUP', () => void reload().catch((err) => log(`SIGHUP: the registry was not reloaded: ${(err as Error).message}`)));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
  return EXIT.ok;
}
