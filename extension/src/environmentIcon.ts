// Which icon an environment gets in the tree: its stage's shape and colour, so production, staging and
// development tell apart at a glance (they looked alike: all grey, and all the same spinner or cross
// once a run was going or had failed). Kept apart from tree.ts, without `vscode`, so a unit test reads it.
import type * as C from '../../contract/index.ts';

/** A codicon id and a theme colour id (vscode.ThemeIcon / vscode.ThemeColor). */
export type IconChoice = { id: string; color: string };

// Colours from the chart palette that the run statuses do not use (yellow running, green succeeded,
// red failed), so a stage's colour never reads as a run's outcome.
export const STAGE_ICONS: Record<C.Stage, IconChoice> = {
  production: { id: 'server-environment', color: 'charts.orange' },
  staging: { id: 'beaker', color: 'charts.purple' },
  development: { id: 'git-branch', color: 'charts.blue' },
};
export const FAILED_COLOR = 'testing.iconFailed';

/**
 * A run in progress shows as one (spinner, clock) while it lasts; otherwise the stage's shape, in the
 * stage's colour, or red when the last run failed or the last health check found Odoo unhealthy.
 */
export function environmentIcon(stage: string, lastStatus: C.RunStatus | undefined, unhealthy: boolean): IconChoice {
  if (lastStatus === 'running') return { id: 'sync~spin', color: 'charts.yellow' };
  if (lastStatus === 'queued') return { id: 'clock', color: STAGE_ICONS[stage as C.Stage]?.color ?? 'foreground' };
  const shape = STAGE_ICONS[stage as C.Stage] ?? { id: 'circle-outline', color: 'foreground' };
  return lastStatus === 'failed' || unhealthy ? { id: shape.id, color: FAILED_COLOR } : shape;
}
