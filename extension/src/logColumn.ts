// Where a run's log panel opens. The first one opens beside the editor; later ones join the group the
// log panels are already in, so that opening logs one after another adds tabs, not editor columns
// ("beside" the active log panel would be one more column each time). No `vscode` import: unit-tested.

/** VS Code's ViewColumn.Beside. */
export const BESIDE = -2;

export interface OpenLogPanel {
  /** The panel's editor column (undefined while VS Code has not placed it). */
  viewColumn: number | undefined;
  /** When it was last the active editor (or opened), for choosing among several groups. */
  lastActive: number;
}

export function logPanelColumn(open: Iterable<OpenLogPanel>): number {
  let best: OpenLogPanel | undefined;
  for (const p of open) if (p.viewColumn !== undefined && p.viewColumn > 0 && (!best || p.lastActive > best.lastActive)) best = p;
  return best ? best.viewColumn! : BESIDE;
}
