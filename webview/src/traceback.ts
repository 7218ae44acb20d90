// Odoo tracebacks name files as Python prints them: `File "/opt/odoo/addons/sale/models/sale.py", line 42`.
// The part from an addon folder on ("sale/models/sale.py") is what can be found in the workspace.
export interface FileRef {
  start: number;
  end: number;
  path: string;
  line: number;
}

const FILE = /File "([^"]+\.py)", line (\d+)/g;

export function fileRefs(line: string): FileRef[] {
  const out: FileRef[] = [];
  for (const m of line.matchAll(FILE)) out.push({ start: m.index!, end: m.index! + m[0].length, path: m[1]!, line: Number(m[2]) });
  return out;
}

/**
 * Workspace-relative paths a traceback path may be at, longest first: "/opt/odoo/addons/x/models/y.py" →
 * "opt/odoo/addons/x/models/y.py", "odoo/addons/x/models/y.py", …, "models/y.py" (never the bare file name).
 */
export function workspaceCandidates(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < parts.length - 1; i++) {
    const tail = parts.slice(i);
    if (tail.length >= 2) out.push(tail.join('/'));
  }
  return out;
}
