// verify: re-reads a backup from every store that holds it and checks each part against what was
// recorded when it was written (the manifest's SHA-256 in the backup's row, the dump's and the
// filestore's in the manifest). Changes nothing; logs what it read and how fast; fails naming every
// damaged or missing part (which raises a verify_failed alert, migrations/20261203000400_ops_alerts.sql).
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifyParams } from '../../../contract/run-params.ts';
import { defineExecutor, type BackupCatalog, type BackupRow } from '../executor.ts';
import { BackupObjectMissing, hashing, type BackupStore } from '../../storage/backup-store.ts';
import { backupPrefixOf } from '../../odoo/backup-writer.ts';
import { mib } from '../../odoo/inspect.ts';
import { isObjects, verifyFilestoreObjects } from '../../storage/filestore-objects.ts';

/** One object to read back, and what it must be. */
export interface PartToCheck {
  label: string;
  key: string;
  sha256: string;
  /** Null when the size was not recorded (the manifest itself). */
  bytes: number | null;
}

/**
 * The stores that hold the backup: every store its row names (the one it was written to, then its copy),
 * and why any of them cannot be read here (which fails the verify: a copy that cannot be read is no copy).
 */
export function storesHolding(b: BackupRow, backups: BackupCatalog): { stores: BackupStore[]; problems: string[] } {
  return backups.namedStores(b);
}

/**
 * The filestore's parts with a SHA-256 of their own: one tarball (older backups), or the index of the
 * content objects (whose files checkObjects reads back).
 */
export function filestoreParts(b: BackupRow): PartToCheck[] {
  const f = b.manifest.filestore;
  if (isObjects(f)) return [{ label: `the filestore index (${f.files} files)`, key: f.index.key, sha256: f.index.sha256, bytes: f.index.bytes }];
  return f ? [{ label: `the filestore archive (${f.files} files)`, key: f.key, sha256: f.sha256, bytes: f.bytes }] : [];
}

/** Every file an objects filestore lists, read back from its pack or object and checked by its SHA-1 and size. */
async function checkObjects(store: BackupStore, b: BackupRow, log: (l: string, stream?: 'stdout' | 'stderr') => Promise<void>, signal: AbortSignal): Promise<{ damaged: string[]; bytes: number }> {
  const f = b.manifest.filestore;
  if (!isObjects(f)) return { damaged: [], bytes: 0 };
  const started = performance.now();
  const r = await verifyFilestoreObjects(store, b.project_id, f, { signal });
  const ms = performance.now() - started;
  const damaged = r.damaged.map((d) => `the filestore file ${d.p} in the store "${store.name}": ${d.problem}`);
  if (damaged.length) await log(`filestore files: ${damaged.length} of ${r.checked} DAMAGED or missing (${r.damaged.slice(0, 3).map((d) => d.p).join(', ')}${r.damaged.length > 3 ? ', …' : ''})`, 'stderr');
  else await log(`filestore files: ${r.checked} checked, ${mib(r.bytes)} read in ${(ms / 1000).toFixed(2)} s (${rate(r.bytes, ms)}), every SHA-1 matches`);
  return { damaged, bytes: r.bytes };
}

export function partsOf(b: BackupRow): PartToCheck[] {
  return [
    { label: 'the manifest (manifest.json)', key: `${backupPrefixOf(b.manifest)}/manifest.json`, sha256: b.sha256, bytes: null },
    { label: 'the database dump (dump.pgc)', key: b.manifest.dump.key, sha256: b.manifest.dump.sha256, bytes: b.manifest.dump.bytes },
    ...filestoreParts(b),
  ];
}

const rate = (bytes: number, ms: number) => `${(bytes / 1048576 / Math.max(ms / 1000, 0.001)).toFixed(1)} MiB/s`;

/** Reads every part from one store; returns what is wrong with each damaged part (none: []). */
export async function checkParts(store: BackupStore, parts: PartToCheck[], log: (l: string, stream?: 'stdout' | 'stderr') => Promise<void>, signal: AbortSignal): Promise<{ damaged: string[]; bytes: number }> {
  const damaged: string[] = [];
  let total = 0;
  for (const part of parts) {
    signal.throwIfAborted();
    const started = performance.now();
    const h = hashing();
    try {
      await pipeline(await store.get(part.key), h, new Writable({ write: (_c, _e, cb) => cb() }), { signal });
    } catch (err) {
      if (!(err instanceof BackupObjectMissing)) throw err;
      damaged.push(`${part.label} is missing from the store "${store.name}"`);
      await log(`${part.label}: MISSING from the store "${store.name}"`, 'stderr');
      continue;
    }
    const ms = performance.now() - started;
    const got = h.result();
    total += got.bytes;
    if (got.sha256 !== part.sha256 || (part.bytes !== null && got.bytes !== part.bytes)) {
      damaged.push(`${part.label} in the store "${store.name}" is damaged: sha256 ${got.sha256} (${got.bytes} bytes), recorded ${part.sha256}${part.bytes === null ? '' : ` (${part.bytes} bytes)`}`);
      await log(`${part.label}: DAMAGED, read ${mib(got.bytes)}, sha256 ${got.sha256} differs from the recorded ${part.sha256}`, 'stderr');
    } else {
      await log(`${part.label}: ${mib(got.bytes)} read in ${(ms / 1000).toFixed(2)} s (${rate(got.bytes, ms)}), sha256 matches`);
    }
  }
  return { damaged, bytes: total };
}

/** The idempotency keys ops.schedule_weekly_verifies gives its runs. */
const WEEKLY = /^verify-(newest|sample):\d{4}-W\d{2}:/;

export const verifyExecutor = defineExecutor({
  kind: 'verify',
  description: 'Re-read a backup from its store(s) and check every checksum (changes nothing)',
  params: verifyParams,
  async execute({ run, environment: env, params, log, signal, backups }) {
    const b = await backups.get(params.backup).catch(async (err: Error) => {
      // The week's sample was picked when it was queued; retention (a newer clone, the daily rotation) may
      // have removed that backup since. That is no failed verify: it would alert the team for nothing.
      if (!WEEKLY.test(run.idempotency_key ?? '') || !/does not exist in this project/.test(err.message)) throw err;
      await log(`backup ${params.backup} was removed (retention) after this week's verify sample picked it: nothing to verify; next week's sample picks among the backups kept then`);
      return null;
    });
    if (!b) return { backupId: params.backup, removed: true };
    if (b.environment_id !== env.id) {
      throw new Error(`backup ${b.id} is not a backup of ${env.name}; verify it on its own environment (odooops backup verify ${b.id} queues it there)`);
    }
    await log(`backup ${b.id}: ${b.kind} of ${b.manifest.database}, taken ${b.manifest.createdAt}, Odoo ${b.manifest.odoo.version}, ${mib(b.size_bytes)}`);
    const started = performance.now();
    const damaged: string[] = [];
    let bytes = 0;
    const { stores, problems } = storesHolding(b, backups);
    damaged.push(...problems.map((p) => `the store ${p}`));
    for (const store of stores) {
      await log(`reading it back from the store "${store.name}"`);
      const r = await checkParts(store, partsOf(b), log, signal);
      damaged.push(...r.damaged);
      bytes += r.bytes;
      // The files only once their index verified (a damaged index cannot say which objects to read).
      if (!r.damaged.some((d) => d.startsWith('the filestore index'))) {
        const o = await checkObjects(store, b, log, signal);
        damaged.push(...o.damaged);
        bytes += o.bytes;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    if (damaged.length) {
      throw new Error(`backup ${b.id} of ${env.name} failed verification: ${damaged.join('; ')}. It cannot be restored as it is: take a new backup, and verify an older one to restore from`);
    }
    await log(`backup ${b.id} verified: ${mib(bytes)} read in ${seconds.toFixed(2)} s (${rate(bytes, seconds * 1000)}), every checksum matches`);
    return { backupId: b.id, stores: stores.map((s) => s.name), bytes, seconds: Math.round(seconds * 100) / 100 };
  },
});
