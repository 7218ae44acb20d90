// Whether a backup store is filling up: a local store when its filesystem has less than 10 % free
// (statfs), an object store that can say what it holds (usage(), the S3 store) when that is over 90 % of
// the quota the registry gives it. Checked by the scheduler; an alert goes to every project whose
// backups the store holds. The message names the store by its registry name, never its path or bucket.
import { statfs } from 'node:fs/promises';
import type pg from 'pg';
import { asUser, SERVICE_CLAIMS } from '../db/session.ts';
import { LocalBackupStore, type BackupStore } from '../storage/backup-store.ts';

export interface WatchedStore {
  store: BackupStore;
  /** The registry entry's quotaGb, for stores without a filesystem of their own. */
  quotaGb?: number;
}

export interface Thresholds {
  /** A local store's filesystem below this fraction free is filling up (0.10). */
  minFreeFraction?: number;
  /** An object store above this fraction of its quota is filling up (0.90). */
  maxUsedFraction?: number;
}

const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;

/** A sentence saying how full the store is, when it is filling up; null when it is not (or cannot tell). */
export async function storeFilling({ store, quotaGb }: WatchedStore, t: Thresholds = {}): Promise<string | null> {
  if (store instanceof LocalBackupStore) {
    const s = await statfs(store.root);
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    if (total <= 0 || free / total >= (t.minFreeFraction ?? 0.1)) return null;
    return `the backup store "${store.name}" has ${((free / total) * 100).toFixed(1)} % of its disk free (${gib(free)} of ${gib(total)})`;
  }
  const usage = (store as unknown as { usage?: () => Promise<number | { bytes: number }> }).usage;
  if (typeof usage !== 'function' || !quotaGb) return null;
  const got = await usage.call(store);
  const used = typeof got === 'number' ? got : got.bytes;
  const quota = quotaGb * 1024 ** 3;
  if (used / quota <= (t.maxUsedFraction ?? 0.9)) return null;
  return `the backup store "${store.name}" holds ${gib(used)}, ${((used / quota) * 100).toFixed(1)} % of its ${quotaGb} GB quota`;
}

/**
 * The projects whose backups a store holds, or whose backups go there (their store or copy) once they
 * have an environment to back up: a full store fails their next backup.
 */
export async function projectsUsing(pool: pg.Pool, store: BackupStore): Promise<string[]> {
  return (await pool.query(
    `select project_id from ops.backups where $1 = any (stores)
     union select p.id from ops.projects p where (p.backup_store = $1 or p.backup_copy = $1)
       and exists (select 1 from ops.environments e where e.project_id = p.id)
     order by 1`, [store.name])).rows.map((r) => r.project_id as string);
}

/** Checks each store and raises a store_filling alert for the projects of each one filling up; returns how many were raised. */
export async function checkStores(pool: pg.Pool, stores: WatchedStore[], t: Thresholds = {}, log: (m: string) => void = () => {}): Promise<number> {
  let raised = 0;
  for (const w of stores) {
    let filling: string | null;
    try {
      filling = await storeFilling(w, t);
    } catch (err) {
      log(`scheduler: cannot tell how full the backup store "${w.store.name}" is: ${(err as Error).message}`);
      continue;
    }
    if (!filling) continue;
    log(`scheduler: ${filling}`);
    for (const project of await projectsUsing(pool, w.store)) {
      const id = await asUser(pool, SERVICE_CLAIMS, async (c) => (await c.query(
        `select ops.raise_alert($1, null, 'store_filling', $2, $3) as id`,
        [project, `Backup store ${w.store.name} is filling up`,
          `Backup store ${w.store.name} is filling up: ${filling}, checked ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. ` +
          'Next: the operator frees space or gives the store more (or moves backups to another store of the registry); once it is full, backups fail.'])).rows[0].id);
      if (id !== null) raised++;
    }
  }
  return raised;
}
