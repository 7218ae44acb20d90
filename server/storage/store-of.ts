// Which store a backup is read from. A backup lists the stores that hold all of it (ops.backups.stores,
// the one it was written to first); reads take the first one this machine's registry resolves for the
// project and that holds it, so changing a project's store later, or losing one store, strands nothing.
import type { BackupManifest } from '../../contract/index.ts';
import { missingParts, type BackupStore } from './backup-store.ts';
import { isObjects, missingObjects } from './filestore-objects.ts';

export type Resolve = (name: string) => BackupStore;

/** The stores among `names` that resolve (in order), and why the others do not. */
export function resolveStores(names: readonly string[], resolve: Resolve): { stores: BackupStore[]; problems: string[] } {
  const stores: BackupStore[] = [];
  const problems: string[] = [];
  for (const name of names) {
    try {
      stores.push(resolve(name));
    } catch (err) {
      problems.push(`"${name}": ${(err as Error).message}`);
    }
  }
  return { stores, problems };
}

const manifestKey = (m: BackupManifest) => `${m.dump.key.replace(/\/dump\.pgc$/, '')}/manifest.json`;

/** The backup's stores that resolve and hold its manifest (a copy is complete once its manifest is there). */
export async function storesHolding(names: readonly string[], resolve: Resolve, manifest: BackupManifest): Promise<{ stores: BackupStore[]; problems: string[] }> {
  const { stores, problems } = resolveStores(names, resolve);
  const holding: BackupStore[] = [];
  for (const s of stores) {
    try {
      if (await s.exists(manifestKey(manifest))) holding.push(s);
      else problems.push(`"${s.name}": the backup is not there (removed from the store)`);
    } catch (err) {
      problems.push(`"${s.name}": cannot be reached (${(err as Error).message.split('\n')[0]})`);
    }
  }
  return { stores: holding, problems };
}

/**
 * The first of the stores that has every part (dump, filestore); otherwise the parts missing from the
 * first store that answered, and the stores that did not answer.
 */
export async function firstComplete(stores: readonly BackupStore[], manifest: BackupManifest, projectId: string): Promise<{ store: BackupStore | undefined; missing: ('dump' | 'filestore')[]; unreachable: string[] }> {
  let first: ('dump' | 'filestore')[] | undefined;
  const unreachable: string[] = [];
  for (const s of stores) {
    let missing;
    try {
      missing = await missingParts(s, manifest);
      // An objects filestore is there when every object its index lists is (one listing of the store).
      if (!missing.includes('filestore') && isObjects(manifest.filestore) && (await missingObjects(s, projectId, manifest.filestore)).length) missing.push('filestore');
    } catch (err) {
      unreachable.push(`"${s.name}" cannot be reached (${(err as Error).message.split('\n')[0]})`);
      continue;
    }
    if (!missing.length) return { store: s, missing, unreachable };
    first ??= missing;
  }
  return { store: undefined, missing: first ?? [], unreachable };
}

/** What the API reads backups and keeps uploads with (server/app.ts builds it from the registry). */
export interface BackupStores {
  /** The server's own directory (--backup-dir): import uploads, which the import run turns into a backup. */
  uploads: BackupStore;
  /** The stores of a project's backup this server's registry resolves, in the backup's order. */
  resolve(slug: string, names: readonly string[]): { stores: BackupStore[]; problems: string[] };
}
