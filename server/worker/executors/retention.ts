// retention: Odoo.sh's backup retention for an environment — the newest backup of each of the last 7
// days, of each of the last 4 weeks and of each of the last 3 months are kept, and everything taken
// today; masked clones keep the newest 3. Never deletes the only good backup: when no kept backup
// passes verification, the newest one that does is kept too. Then the project's filestore objects no
// kept backup lists are swept (mark and sweep, storage/filestore-objects.ts).
import { noParams } from '../../../contract/run-params.ts';
import { defineExecutor, type BackupRow } from '../executor.ts';
import { mib } from '../../odoo/inspect.ts';
import { verifyBackup } from './restore.ts';
import { sweepContent, type SweepResult } from '../../storage/filestore-objects.ts';
import type { BackupCatalog } from '../executor.ts';

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  clones: number;
}
export const ODOO_SH_RETENTION: RetentionPolicy = { daily: 7, weekly: 4, monthly: 3, clones: 3 };

const day = (d: Date) => d.toISOString().slice(0, 10);
const month = (d: Date) => d.toISOString().slice(0, 7);
/** ISO week, as "YYYY-Www". */
function week(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dayNum = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dayNum);
  const yearStart = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  return `${t.getUTCFullYear()}-W${String(Math.ceil(((t.getTime() - yearStart.getTime()) / 86400000 + 1) / 7)).padStart(2, '0')}`;
}

/**
 * Which backups the policy keeps (by id): the newest of each of the last `daily` calendar days, of each
 * of the last `weekly` ISO weeks and of each of the last `monthly` months (UTC), everything from today,
 * and the newest `clones` clones. `backups` newest first. Pure, so it is tested on its own.
 */
export function keptByPolicy(backups: { id: string; kind: string; created_at: Date }[], now: Date, p: RetentionPolicy = ODOO_SH_RETENTION): Set<string> {
  const keep = new Set<string>();
  const regular = backups.filter((b) => b.kind !== 'clone');
  const DAY = 86_400_000;
  const windows: [(d: Date) => string, Set<string>][] = [
    [day, new Set(Array.from({ length: p.daily }, (_, i) => day(new Date(now.getTime() - i * DAY))))],
    [week, new Set(Array.from({ length: p.weekly }, (_, i) => week(new Date(now.getTime() - i * 7 * DAY))))],
    [month, new Set(Array.from({ length: p.monthly }, (_, i) => month(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1)))))],
  ];
  for (const [key, allowed] of windows) {
    const taken = new Set<string>();
    for (const b of regular) {
      const k = key(b.created_at);
      if (!allowed.has(k) || taken.has(k)) continue;
      taken.add(k);
      keep.add(b.id); // the newest of its day, week or month
    }
  }
  for (const b of regular) if (day(b.created_at) === day(now)) keep.add(b.id);
  for (const b of backups.filter((x) => x.kind === 'clone').slice(0, p.clones)) keep.add(b.id);
  return keep;
}

export const retentionExecutor = defineExecutor({
  kind: 'retention',
  description: 'Delete backups beyond the retention policy (7 daily, 4 weekly, 3 monthly), keeping a good one',
  params: noParams,
  async execute({ environment: env, log, signal, backups }) {
    const abandoned = await backups.removeAbandoned();
    if (abandoned.prefixes.length) await log(`removed ${abandoned.prefixes.length} unfinished backup(s) an interrupted run left in the store: ${abandoned.prefixes.join(', ')}`);
    if (abandoned.uploads) await log(`ended ${abandoned.uploads} unfinished upload(s) an interrupted run left in the store`);
    const all = await backups.list();
    const kept = keptByPolicy(all, new Date());
    const doomed = all.filter((b) => !kept.has(b.id));
    await log(`${env.name}: ${all.length} backups, ${kept.size} kept by the policy (7 daily, 4 weekly, 3 monthly; 3 clones), ${doomed.length} to delete`);
    if (doomed.length === 0) return { kept: kept.size, deleted: 0, objects: await sweep(env.project_id, backups, log, signal) };

    // Is there a good backup among those kept (newest first)? If not, keep the newest good one.
    const good = async (b: BackupRow) => {
      try {
        await verifyBackup(b, backups, async () => {}, signal);
        return true;
      } catch (err) {
        await log(`backup ${b.id} (${b.kind}, ${b.created_at.toISOString()}) is not good: ${(err as Error).message}`, 'stderr');
        return false;
      }
    };
    let hasGood = false;
    for (const b of all.filter((x) => kept.has(x.id) && x.kind !== 'clone')) {
      if (await good(b)) {
        hasGood = true;
        break;
      }
    }
    if (!hasGood) {
      for (const b of doomed.filter((x) => x.kind !== 'clone')) {
        if (await good(b)) {
          doomed.splice(doomed.indexOf(b), 1);
          await log(`no kept backup verifies: keeping ${b.id} of ${b.created_at.toISOString()}, the newest good one`);
          hasGood = true;
          break;
        }
      }
    }
    let freed = 0;
    for (const b of doomed) {
      signal.throwIfAborted();
      await backups.remove(b);
      freed += b.size_bytes;
      await log(`deleted backup ${b.id} (${b.kind}, ${b.created_at.toISOString()}, ${mib(b.size_bytes)})`);
    }
    await log(`retention done: ${doomed.length} deleted, ${mib(freed)} freed${hasGood ? '' : '; WARNING: no backup of this environment verifies'}`);
    return { kept: all.length - doomed.length, deleted: doomed.length, freedBytes: freed, objects: await sweep(env.project_id, backups, log, signal) };
  },
});

/**
 * Frees the project's filestore objects that no backup of the project lists any more (all its
 * environments share them). Skipped, said in the log, while a backup of the project holds the content
 * lock: it may count on objects no recorded backup lists yet; the next retention run sweeps.
 */
async function sweep(projectId: string, backups: BackupCatalog, log: (l: string, s?: 'stdout' | 'stderr') => Promise<void>, signal: AbortSignal): Promise<SweepResult | null> {
  const results: SweepResult[] = [];
  const stores = backups.configuredStores;
  for (const store of stores) {
    const where = stores.length > 1 ? ` in the store "${store.name}"` : '';
    const release = await backups.tryContentSweep(store);
    if (!release) {
      await log(`filestore objects${where}: not swept this time, a backup of the project is being written (the next retention run sweeps)`);
      continue;
    }
    try {
      const kept = await backups.projectBackups();
      // The backups this store holds: their indexes are read from it (another store's backups list objects this one may lack).
      const here = kept.filter((b) => (b.stores ?? ['default']).includes(store.name));
      const r = await sweepContent({ store, projectId, kept: here.map((b) => b.manifest), log: (l) => void log(l), signal });
      await log(`filestore objects${where}: ${r.deleted} no kept backup needs deleted${r.repacked ? ` (${r.repacked} of them packs rewritten with what is still needed)` : ''} (${mib(r.freedBytes)} freed), ${r.kept} kept${r.young ? `, ${r.young} younger than the grace period left` : ''}`);
      results.push(r);
    } catch (err) {
      await log(`filestore objects${where}: not swept: ${(err as Error).message}`, 'stderr');
    } finally {
      await release();
    }
  }
  if (!results.length) return null;
  return results.reduce((a, r) => ({ kept: a.kept + r.kept, deleted: a.deleted + r.deleted, freedBytes: a.freedBytes + r.freedBytes, young: a.young + r.young, repacked: (a.repacked ?? 0) + (r.repacked ?? 0) }));
}
