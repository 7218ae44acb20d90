// Open run logs, Cancel run, Re-run and Retry from the command palette: a pick of the project's recent
// runs (those the action applies to), or a run number typed as the CLI shows it (`odooops run list`:
// 42; also "#42", "run 42"). No vscode import: unit-tested on its own.
import * as C from '../../contract/index.ts';

export type RunAction = 'logs' | 'cancel' | 'rerun' | 'retry';

const ENDED: readonly string[] = C.TERMINAL_STATUSES;

/** Whether the action applies to a run in this state, and if not, why (said when a number was typed). */
export function refusal(action: RunAction, run: Pick<C.Run, 'id' | 'status'>): string | null {
  switch (action) {
    case 'logs':
      return null;
    case 'cancel':
      return ENDED.includes(run.status) ? `run #${run.id} already ${run.status}: there is nothing to cancel` : null;
    case 'rerun':
      return ENDED.includes(run.status) ? null : `run #${run.id} is still ${run.status}: cancel it, or wait for it to end, before running it again`;
    case 'retry':
      return run.status === 'failed' ? null : `run #${run.id} did not fail (${run.status}): only a failed run is retried (Re-run queues a new one)`;
  }
}

/** A run number as typed: "42", "#42", "run 42", "Run #42"; null for anything else. */
export function parseRunNumber(text: string): number | null {
  const m = /^\s*(?:run\s*)?#?\s*(\d{1,15})\s*$/i.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

export interface RunItem {
  label: string;
  description: string;
  detail?: string;
  run: C.Run;
}

/** The runs the action applies to, newest first, as quick-pick items ("#42 backup", "staging · failed · …"). */
export function runItems(action: RunAction, runs: readonly C.Run[], who: (userId: string) => string = (u) => u.slice(0, 8)): RunItem[] {
  return [...runs].sort((a, b) => b.id - a.id).filter((r) => refusal(action, r) === null).map((run) => ({
    label: `#${run.id} ${run.kind}`,
    description: [run.environment, run.status, `${run.queuedAt.slice(0, 16).replace('T', ' ')} UTC`, run.requestedBy ? `by ${who(run.requestedBy)}` : null].filter(Boolean).join(' · '),
    ...(run.error ? { detail: run.error.length > 160 ? `${run.error.slice(0, 159)}…` : run.error } : {}),
    run,
  }));
}
