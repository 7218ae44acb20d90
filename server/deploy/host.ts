// Where a deploy's steps run: Odoo on the worker's machine (local-odoo.ts) or on another host over the
// system's ssh (ssh-odoo.ts). The deploy run drives either the same way.
export interface OdooHost {
  /** For the log: what runs where. */
  readonly description: string;
  /** Puts the repository's files at a revision where Odoo reads them. */
  checkout(revision: string, signal?: AbortSignal): Promise<void>;
  /** What happens before modules are updated (the local Odoo is stopped); true when something was stopped. */
  beforeUpdate(): Promise<boolean>;
  /** odoo -u … -i … --stop-after-init; each output line goes to `out`. */
  update(modules: { update: string[]; install: string[] }, out: (line: string) => Promise<void>, signal: AbortSignal): Promise<void>;
  restart(): Promise<void>;
  /** Resolves when Odoo answers its health check with 200; throws with what it last saw. */
  healthy(timeoutMs?: number, signal?: AbortSignal): Promise<void>;
  /** Stops it for good (a destroyed environment); false when nothing ran. */
  stop(): Promise<boolean>;
}
