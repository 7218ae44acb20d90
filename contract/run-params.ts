// The parameters of the built-in run kinds, and the rules about what they may name. One module, read by
// the API and the CLI when a run is queued (a bad run is refused then, nothing queued) and by each
// executor when the run starts (runs can also be queued in SQL). It imports only the contract: the API
// and the CLI must not import the worker to know what a run takes.
import { z } from 'zod';
import { BranchName, EnvironmentName, FilestorePolicy, ImportParams } from './index.ts';

export const backupParams = z.strictObject({ kind: z.enum(['manual', 'daily', 'pre-deploy']).default('manual') });
export const restoreParams = z.strictObject({ backup: z.uuid() });
/** A verify re-reads one backup of the run's project from the store and checks every checksum. */
export const verifyParams = z.strictObject({ backup: z.uuid() });
export const cloneParams = z.strictObject({
  /** The source environment's name; the project's production environment when omitted. */
  from: EnvironmentName.optional(),
  /** Clone a backup (of production) instead of the live database. */
  backup: z.uuid().optional(),
  /** Which filestore files travel (contract FilestorePolicy); assets by default. */
  filestore: FilestorePolicy.default('assets'),
  /**
   * Rules merged onto the project's masking profile (see contract MaskProfile): they may only make it
   * stricter, a run that would weaken it is refused (checked against the project's profile).
   */
  profile: z.unknown().optional(),
}).refine((p) => !(p.from && p.backup), 'give either "from" (an environment) or "backup", not both');
// A push names its commit; a deploy asked for from the editor may name only the branch (its newest
// commit when the worker fetches: what "Deploy" means to someone who just pushed).
export const deployParams = z.strictObject({
  revision: z.string().regex(/^[0-9a-f]{40}$/, 'a full commit id (40 hex digits)').optional(),
  branch: BranchName.optional(),
}).refine((p) => p.revision || p.branch, 'a deploy needs a revision (40 hex digits) or a branch');
export const noParams = z.strictObject({});
/** A build names a commit or a branch as a deploy does (its newest commit when the worker fetches). */
export const buildParams = z.strictObject({
  revision: z.string().regex(/^[0-9a-f]{40}$/, 'a full commit id (40 hex digits)').optional(),
  branch: BranchName.optional(),
}).refine((p) => p.revision || p.branch, 'a build needs a revision (40 hex digits) or a branch');

/** The built-in kinds' parameters. A kind an operator's --executors module adds is checked by its worker only. */
export const RUN_PARAMS = {
  health: noParams,
  backup: backupParams,
  restore: restoreParams,
  clone: cloneParams,
  retention: noParams,
  deploy: deployParams,
  destroy: noParams,
  import: ImportParams,
  verify: verifyParams,
  build: buildParams,
} as const satisfies Record<string, z.ZodType>;
export type BuiltinRunKind = keyof typeof RUN_PARAMS;

/** What each parameter takes, for the error that names it. */
const ALLOWED: Record<string, Record<string, string>> = {
  backup: { kind: 'manual (the default), daily or pre-deploy' },
  restore: { backup: 'the id of a backup of this project (odooops backup list PROJECT ENV)' },
  clone: {
    from: 'the name of another environment of the project (production when left out)',
    backup: 'the id of a backup of the project\'s production environment',
    filestore: `${FilestorePolicy.options.join(', ')} (assets when left out)`,
    profile: 'masking rules (JSON or YAML) that make the project\'s profile stricter',
  },
  deploy: { revision: 'a full commit id (40 hex digits)', branch: 'a branch name of the project\'s repository' },
  verify: { backup: 'the id of a backup of this project (odooops backup list PROJECT ENV)' },
  build: { revision: 'a full commit id (40 hex digits)', branch: 'a branch name of the project\'s repository' },
  import: {
    upload: 'the id an upload answered with (odooops env import PROJECT ENV FILE uploads and queues)',
    sha256: 'the uploaded file\'s SHA-256, as the upload answered it',
  },
};

export const isBuiltinKind = (kind: string): kind is BuiltinRunKind => Object.hasOwn(RUN_PARAMS, kind);

/** The parameters a kind takes, as "name (what)" phrases; empty for a kind that takes none. */
export function paramsOf(kind: BuiltinRunKind): string[] {
  const shape = (RUN_PARAMS[kind] as unknown as { shape: Record<string, unknown> }).shape;
  return Object.keys(shape).map((k) => `${k} (${ALLOWED[kind]?.[k] ?? 'see the docs'})`);
}

/**
 * Why a built-in run's params are refused, one sentence per problem, naming the parameter and what it
 * takes; null when they are fine (or the kind is not built in).
 */
export function runParamsProblems(kind: string, params: unknown): string[] | null {
  if (!isBuiltinKind(kind)) return null;
  const r = RUN_PARAMS[kind].safeParse(params);
  if (r.success) return null;
  const given = (params ?? {}) as Record<string, unknown>;
  return r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const takes = paramsOf(kind);
      return `a ${kind} run has no parameter ${i.keys.map((k) => `"${k}"`).join(', ')}; ${takes.length ? `it takes ${takes.join('; ')}` : 'it takes none'}`;
    }
    const key = String(i.path[0] ?? '');
    if (!key || i.code === 'custom') return `${kind}: ${i.message}`;
    const allowed = ALLOWED[kind]?.[key];
    const got = given[key];
    const what = got === undefined ? 'is missing' : `${JSON.stringify(got).slice(0, 80)} is not allowed (${i.message})`;
    return `params.${key} ${what}${allowed ? `: give ${allowed}` : ''}`;
  });
}

/** Parses a built-in run's params or throws one error naming every problem (what the worker does). */
export function parseRunParams<K extends BuiltinRunKind>(kind: K, params: unknown): z.output<(typeof RUN_PARAMS)[K]> {
  const problems = runParamsProblems(kind, params);
  if (problems) throw new Error(`invalid params for ${kind}: ${problems.join('; ')}`);
  return RUN_PARAMS[kind].parse(params) as z.output<(typeof RUN_PARAMS)[K]>;
}

// What a run may name, beyond its params' shape ---------------------------------------------------------

/** A restore of a production backup elsewhere would put unmasked data outside production. */
export function restoreRefusal(backup: { id: string; stage: string }, target: { stage: string }): string | null {
  if (backup.stage === 'production' && target.stage !== 'production') {
    return `backup ${backup.id} is of production: restoring it into ${target.stage} needs the clone rules (neutralize and mask); queue a clone run with {"backup": "${backup.id}"} instead`;
  }
  return null;
}

/** A clone goes into staging or development, from another environment. */
export function cloneTargetRefusal(target: { name: string; stage: string }): string | null {
  return target.stage === 'production'
    ? `${target.name} is a production environment: OdooOps never neutralizes or masks production; clone into a staging or development environment`
    : null;
}

export const CLONE_BACKUP_NOT_PRODUCTION = 'the backup is not of this project\'s production environment; clone from production backups only';

/** Only development environments go with their branch. */
export function destroyRefusal(target: { name: string; stage: string }): string | null {
  return target.stage !== 'development' ? `${target.name} is a ${target.stage} environment: only development environments are destroyed with their branch` : null;
}
