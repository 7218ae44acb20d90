// An 'alert' on a project's Realtime feed (a failed or missed backup, a failed verify, a backup store
// filling up) becomes a warning notification for the members who have the editor open: the alert's
// message, and "Open run" when a run raised it. No vscode import: unit-tested with a stand-in window.
import * as C from '../../contract/index.ts';

export interface AlertNotice {
  text: string;
  /** The run to open from the notification, if one raised the alert. */
  runId: number | null;
  actions: string[];
}

export const OPEN_RUN = 'Open run';
/** VS Code shows notifications on a few lines: the message is cut rather than hidden. */
const MAX_TEXT = 600;

/** The notification for an alert broadcast, or null when the payload is not an alert. */
export function alertNotice(project: string, payload: unknown): AlertNotice | null {
  const parsed = C.AlertBroadcast.safeParse(payload);
  if (!parsed.success) return null;
  const a = parsed.data;
  const text = `OdooOps ${project}: ${a.message}`;
  return {
    text: text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text,
    runId: a.run_id,
    actions: a.run_id ? [OPEN_RUN] : [],
  };
}

/** What the handler needs of VS Code: a warning notification, and a run's log panel. */
export interface AlertUi {
  showWarning(text: string, ...actions: string[]): PromiseLike<string | undefined>;
  openRun(runId: number): void;
}

/** Shows an alert; opens its run when the member picks "Open run". */
export async function showAlert(ui: AlertUi, project: string, payload: unknown): Promise<AlertNotice | null> {
  const notice = alertNotice(project, payload);
  if (!notice) return null;
  const picked = await ui.showWarning(notice.text, ...notice.actions);
  if (picked === OPEN_RUN && notice.runId) ui.openRun(notice.runId);
  return notice;
}
