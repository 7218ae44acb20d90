// Runs that replace an environment's database (a clone into it, a restore, an import) are confirmed
// first, every time, in a modal that names exactly what is replaced (project, environment, its database
// and filestore) and with what; beside "Replace" it offers "Back up first": a backup of the target is
// made, followed to its end, and the replacing run is queued only once that backup succeeded.
// No vscode import: the words and the order of the steps are unit-tested on their own.
import type * as C from '../../contract/index.ts';
import { CliError, EXIT } from '../../client/api-client.ts';

/** Run kinds that replace an environment's database and filestore. */
export const REPLACING_KINDS = ['clone', 'restore', 'import'] as const;
export type ReplacingKind = (typeof REPLACING_KINDS)[number];
export const replacesDatabase = (kind: string): kind is ReplacingKind => (REPLACING_KINDS as readonly string[]).includes(kind);

export const REPLACE = 'Replace';
export const BACK_UP_FIRST = 'Back up first';

export interface Replacement {
  kind: ReplacingKind;
  project: string;
  env: Pick<C.Environment, 'name' | 'stage' | 'database' | 'filestore'>;
  /** What replaces it, in words (backupSource, cloneSource, importSource). */
  source: string;
}

export interface Confirmation {
  message: string;
  detail: string;
  /** In the order shown; Cancel is the dialog's own. */
  buttons: [typeof BACK_UP_FIRST, typeof REPLACE];
}

const when = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
const size = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;

/** A backup as the confirmation names it: its kind, environment, time, database and size. */
export function backupSource(b: C.Backup): string {
  return `the ${b.kind} backup of ${b.environment} made ${when(b.createdAt)} (database ${b.database ?? 'unknown'}, ${size(b.sizeBytes)}${b.odooVersion ? `, Odoo ${b.odooVersion}` : ''})`;
}

/** What a clone run with these params copies: a production backup, the environment `from`, or the project's production. */
export function cloneSource(params: Record<string, unknown>, envs: readonly Pick<C.Environment, 'name' | 'stage' | 'database'>[], backup?: C.Backup): string {
  if (typeof params.backup === 'string') return `a masked copy of ${backup ? backupSource(backup) : `backup ${params.backup}`}`;
  const from = typeof params.from === 'string' ? envs.find((e) => e.name === params.from) : envs.find((e) => e.stage === 'production');
  const name = typeof params.from === 'string' ? params.from : from?.name ?? 'production';
  return `a fresh, masked copy of ${name}${from ? ` (database ${from.database.name})` : ''}, made now`;
}

/** What an import brings: the file picked, or (an approved one) the upload its approval was given for. */
export function importSource(what: { file?: string; sha256?: unknown }): string {
  if (what.file) return `the database in ${what.file}`;
  return `the uploaded database${typeof what.sha256 === 'string' ? ` with SHA-256 ${what.sha256.slice(0, 12)}…` : ''}`;
}

const VERB: Record<ReplacingKind, string> = { clone: 'clone', restore: 'restore', import: 'import' };

export function replaceConfirmation(r: Replacement): Confirmation {
  const production = r.env.stage === 'production';
  const db = r.env.database;
  const verb = VERB[r.kind];
  return {
    message: `${verb[0]!.toUpperCase()}${verb.slice(1)} into ${r.project} › ${r.env.name}${production ? ', PRODUCTION' : ` (${r.env.stage})`}: replace its database ${db.name}?`,
    detail: [
      `Project: ${r.project}`,
      `Environment: ${r.env.name} (${r.env.stage})`,
      `Replaced: its database ${db.name}${db.server ? ` on ${db.server}` : ''} and its filestore${r.env.filestore ? ` (${r.env.filestore})` : ''}`,
      `With: ${r.source}`,
      '',
      `What is there now stays until the ${verb} has succeeded (a failed one leaves it as it is); then it is gone.`,
      `"${BACK_UP_FIRST}" makes a backup of ${r.env.name} first, waits for it to succeed, then starts the ${verb}.`,
    ].join('\n'),
    buttons: [BACK_UP_FIRST, REPLACE],
  };
}

export interface ReplaceSteps {
  /** Shows the confirmation; the button picked, undefined for Cancel. */
  ask(c: Confirmation): Promise<string | undefined>;
  /** Queues a backup of the target and resolves with the run once it has ended. */
  backUp(): Promise<C.Run>;
  /** Queues the replacing run (or uploads the import). */
  replace(): Promise<unknown>;
}

/**
 * Asks (unless `answer` already says what was picked: the tests' way, and never a default), then
 * replaces, after a successful safety backup when that was picked. 'cancelled': nothing was queued.
 */
export async function confirmThenReplace(r: Replacement, steps: ReplaceSteps, answer?: string): Promise<'replaced' | 'cancelled'> {
  const choice = answer ?? await steps.ask(replaceConfirmation(r));
  if (choice !== REPLACE && choice !== BACK_UP_FIRST) return 'cancelled';
  if (choice === BACK_UP_FIRST) {
    const b = await steps.backUp();
    if (b.status !== 'succeeded') {
      throw new CliError(`the backup of ${r.env.name} (run #${b.id}) ${b.status}${b.error ? `: ${b.error}` : ''}; the ${VERB[r.kind]} was not started and nothing was replaced`,
        EXIT.runFailed, `Open run #${b.id}'s log to see why, then try again (or pick "${REPLACE}" to go on without a backup).`);
    }
  }
  await steps.replace();
  return 'replaced';
}
