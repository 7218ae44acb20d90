// What the Odoo log panel decides without VS Code (unit-tested alone): its title, the lines a level
// filter shows, and the messages its webview may send, checked with zod before they are acted on.
import { z } from 'zod';
import * as C from '../../contract/index.ts';

/** The filter the panel opens with: everything Odoo writes at its default log level. */
export const DEFAULT_LEVEL: C.OdooLogLevel = 'info';

export const odooLogTitle = (project: string, env: string) => `Odoo log · ${env} (${project})`;

/** The lines shown under the filter `min` (that level and above; a traceback has its record's level). */
export const atLevel = (lines: readonly C.OdooLogLine[], min: C.OdooLogLevel): C.OdooLogLine[] =>
  min === 'debug' ? [...lines] : lines.filter((l) => C.atLeastLevel(l.level, min));

/** The level filter's change, from the page. */
export const LevelMessage = z.strictObject({ type: z.literal('level'), level: C.OdooLogLevel });
