import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Executor } from '../executor.ts';
import { backupExecutor } from './backup.ts';
import { buildExecutor } from './build.ts';
import { cloneExecutor } from './clone.ts';
import { deployExecutor } from './deploy.ts';
import { destroyExecutor } from './destroy.ts';
import { healthExecutor } from './health.ts';
import { importExecutor } from './import.ts';
import { restoreExecutor } from './restore.ts';
import { retentionExecutor } from './retention.ts';
import { verifyExecutor } from './verify.ts';

export const builtinExecutors: Executor<any>[] = [healthExecutor, backupExecutor, restoreExecutor, cloneExecutor, retentionExecutor, deployExecutor, destroyExecutor, importExecutor, verifyExecutor, buildExecutor];

/**
 * Loads extra executors from a module (the server's --executors option): its default export, or its
 * `executors` export, is an array of executors. A kind defined twice is refused.
 */
export async function loadExecutors(modules: string[]): Promise<Executor<any>[]> {
  const all = [...builtinExecutors];
  for (const m of modules) {
    const mod = await import(pathToFileURL(resolve(m)).href);
    const list = (mod.executors ?? mod.default) as Executor<any>[] | undefined;
    if (!Array.isArray(list)) throw new Error(`${m} exports no executors (export an array as "executors" or default)`);
    all.push(...list);
  }
  const seen = new Set<string>();
  for (const e of all) {
    if (typeof e?.kind !== 'string' || typeof e.execute !== 'function' || !e.params) throw new Error(`an executor in ${modules.join(', ')} lacks kind, params or execute`);
    if (seen.has(e.kind)) throw new Error(`two executors claim the run kind "${e.kind}"`);
    seen.add(e.kind);
  }
  return all;
}
