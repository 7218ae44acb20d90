// The control plane keeps a copy of the registry's names and bindings (ops.infrastructure), so the API
// and the database can refuse a name a project may not use before anything is queued. Only a server
// writes it, from its registry file; workers never read it (they resolve names from their own file).
import type pg from 'pg';
import type { Infrastructure } from './registry.ts';

export async function publishInfrastructure(pool: pg.Pool, infra: Infrastructure, publisher: string, log: (m: string) => void): Promise<void> {
  const entries = infra.entries();
  const client = await pool.connect();
  try {
    await client.query('begin');
    // One publisher at a time; servers sharing a control plane are expected to share one registry file.
    await client.query(`select pg_advisory_xact_lock(7411203119)`);
    const prior = (await client.query(`select sha256, published_by from ops.infrastructure_source`)).rows[0];
    if (prior?.sha256 === infra.sha256) {
      await client.query('commit');
      return;
    }
    if (prior) log(`infrastructure registry: replacing the one published by ${prior.published_by} (servers sharing a control plane should share one registry file)`);
    await client.query('delete from ops.infrastructure');
    if (entries.length) {
      await client.query(
        `insert into ops.infrastructure (kind, name, description, details, projects)
         select * from jsonb_to_recordset($1::jsonb) as x(kind text, name text, description text, details jsonb, projects text[])`,
        [JSON.stringify(entries)],
      );
    }
    await client.query(
      `insert into ops.infrastructure_source (id, sha256, published_by, published_at) values (true, $1, $2, now())
       on conflict (id) do update set sha256 = excluded.sha256, published_by = excluded.published_by, published_at = now()`,
      [infra.sha256, publisher],
    );
    await client.query(
      `insert into ops.audit_log (actor_role, action, target, details) values ('service_role', 'infrastructure.published', $1, $2)`,
      [infra.sha256.slice(0, 12), JSON.stringify({ publisher, entries: entries.map((e) => `${e.kind}:${e.name} → ${(e.projects ?? []).join(',')}`) })],
    );
    await client.query('commit');
    log(`infrastructure registry: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} published${infra.source ? ` from ${infra.source}` : ''}`);
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** The operator's own identity (this machine's local user) is always an instance admin. */
export async function ensureInstanceAdmin(pool: pg.Pool, userId: string): Promise<void> {
  await pool.query('insert into ops.instance_admins (user_id) values ($1) on conflict do nothing', [userId]);
}
