// "Edit Environment…": what `odooops env set` changes, with quick picks and input boxes. The database
// server and filestore root are picked from the registry entries bound to the project (the server checks
// again: it decides, this only proposes). No vscode import: the UI comes in as an interface, so the flow
// is unit-tested with a scripted one (extension/test/unit/edit-environment.test.ts).
import * as C from '../../contract/index.ts';

export interface EditUi {
  pick<T extends { label: string }>(items: T[], placeHolder: string): Promise<T | undefined>;
  /** An input box; validate returns the message to show, or null when the value is fine. */
  input(prompt: string, value: string, validate: (v: string) => string | null): Promise<string | undefined>;
}
export interface EditApi {
  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T>;
  request<T>(method: string, path: string, schema: { parse(v: unknown): T }, body?: unknown): Promise<{ status: number; data: T }>;
}

type Field = 'url' | 'branch' | 'server' | 'database' | 'filestore';
const CLEAR = '(none)';

const firstIssue = (r: { success: boolean; error?: { issues: { message: string }[] } }) => (r.success ? null : r.error!.issues[0]!.message);

/** Whether the database name is one the registry entry allows (its globs, published as regular expressions). */
function allowedOn(entry: C.InfraEntry | undefined, name: string): boolean {
  const patterns = (entry?.details as { databases?: string[] } | undefined)?.databases;
  return !patterns || patterns.some((p) => new RegExp(p).test(name));
}

/**
 * Asks what to change and sends one PATCH; the environment as the server now has it, or undefined when
 * the user stepped out. `set` skips the questions (what the extension-host test and other commands pass).
 */
export async function editEnvironment(api: EditApi, ui: EditUi, project: string, env: C.Environment, set?: C.UpdateEnvironment): Promise<C.Environment | undefined> {
  const body = set ?? await ask(api, ui, project, env);
  if (!body) return undefined;
  const path = `/api/projects/${encodeURIComponent(project)}/environments/${encodeURIComponent(env.name)}`;
  return (await api.request('PATCH', path, C.Environment, C.UpdateEnvironment.parse(body))).data;
}

async function ask(api: EditApi, ui: EditUi, project: string, env: C.Environment): Promise<C.UpdateEnvironment | undefined> {
  const fields: { label: string; description: string; field: Field }[] = [
    { label: 'URL', description: env.url ?? 'not set', field: 'url' },
    { label: 'Branch', description: env.branch ?? 'not set', field: 'branch' },
    { label: 'Database server', description: env.database.server ?? 'not set', field: 'server' },
    { label: 'Database name', description: env.database.name, field: 'database' },
    { label: 'Filestore root', description: env.filestore ?? 'none', field: 'filestore' },
  ];
  const what = await ui.pick(fields, `Change what of ${env.name}?`);
  if (!what) return undefined;
  switch (what.field) {
    case 'url': {
      const v = await ui.input(`URL of ${env.name} (empty: none)`, env.url ?? '', (s) => (s === '' ? null : firstIssue(C.EnvironmentUrl.safeParse(s))));
      return v === undefined ? undefined : { url: v === '' ? null : v };
    }
    case 'branch': {
      const v = await ui.input(`Branch of ${env.name} (empty: none)`, env.branch ?? '', (s) => (s === '' ? null : firstIssue(C.BranchName.safeParse(s))));
      return v === undefined ? undefined : { branch: v === '' ? null : v };
    }
    case 'server':
    case 'database':
    case 'filestore': {
      const entries = await api.get(`/api/projects/${encodeURIComponent(project)}/infrastructure`, { parse: (v: unknown) => C.InfraEntry.array().parse(v) });
      const servers = entries.filter((e) => e.kind === 'database_server');
      if (what.field === 'filestore') {
        const roots = entries.filter((e) => e.kind === 'filestore_root').map((e) => ({ label: e.name, description: e.description, name: e.name as string | null }));
        const pick = await ui.pick([...roots, { label: CLEAR, description: 'no filestore (the database only)', name: null }], `Filestore root of ${env.name} (its filestore is <root>/${env.database.name})`);
        return pick && { filestore: pick.name };
      }
      let server = env.database.server ?? undefined;
      if (what.field === 'server') {
        if (!servers.length) throw new Error(`${project} may use no database server of the registry; the operator binds one to it`);
        const pick = await ui.pick(servers.map((e) => ({ label: e.name, description: e.description })), `Database server of ${env.name}`);
        if (!pick) return undefined;
        server = pick.label;
      }
      const entry = servers.find((e) => e.name === server);
      const name = await ui.input(`Database of ${env.name} on ${server ?? 'its server'}`, env.database.name, (s) =>
        firstIssue(C.OdooDatabaseName.safeParse(s)) ?? (allowedOn(entry, s) ? null : `the registry does not let ${project} use "${s}" on ${server}`));
      if (name === undefined) return undefined;
      const database = { ...(server !== env.database.server && server ? { server } : {}), ...(name !== env.database.name ? { name } : {}) };
      return Object.keys(database).length ? { database } : undefined;
    }
  }
}
