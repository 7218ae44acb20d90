// Work spread over a database's tables, biggest first, on the given session plus up to `parallel - 1`
// more (tables are independent in a throwaway copy): how masking and verification use both cores.
import type pg from 'pg';

export async function inTableLanes<T>(
  db: pg.ClientBase, tables: Map<string, T>, work: (c: pg.ClientBase, table: string, item: T) => Promise<void>,
  opts: { connect?: () => Promise<pg.Client>; parallel?: number; prepare?: (c: pg.ClientBase) => Promise<void> } = {},
): Promise<void> {
  const { rows } = await db.query(`select relname, pg_total_relation_size(oid)::bigint as b from pg_class where relkind = 'r'`);
  const sizes = new Map(rows.map((r) => [r.relname as string, Number(r.b)]));
  const queue = [...tables].sort(([a], [b]) => (sizes.get(b) ?? 0) - (sizes.get(a) ?? 0) || a.localeCompare(b));
  const lane = async (c: pg.ClientBase) => {
    await opts.prepare?.(c);
    for (let next = queue.shift(); next; next = queue.shift()) await work(c, next[0], next[1]);
  };
  const extra: pg.Client[] = [];
  try {
    for (let i = 1; opts.connect && i < (opts.parallel ?? 1); i++) extra.push(await opts.connect());
    await Promise.all([lane(db), ...extra.map(lane)]);
  } finally {
    for (const c of extra) await c.end().catch(() => {});
  }
}
