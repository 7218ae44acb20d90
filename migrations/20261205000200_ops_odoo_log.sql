-- The running Odoo's own log (odoo.log), followed live (issue 17).
--
-- As on Odoo.sh, the log is fetched only while someone watches: a follower (CLI, extension) renews a
-- lease on the environment (ops.follow_odoo_log, through the API) and the worker tails the file while the
-- lease lasts; 5 minutes without a renewal and it stops. One worker tails an environment at a time: it
-- claims the tail like a run (a claim it renews, ops.claim_odoo_log_tail), so two servers never store the
-- same lines twice, and a dead worker's claim lapses for another to take.
--
-- Lines are kept as run logs are (sequence numbers per environment, gap fill from the API after a seq),
-- but only a recent window: the log of a running Odoo never ends, so the last c_keep lines of each
-- environment stay and older ones are deleted as new ones come. Announced like run logs (at most 4 a
-- second by the worker's batcher; 2 KB of lines at most, else "partial" and read from the API) on the
-- private topic odoo-log:<environment id>, which members who may operate the environment's stage may
-- join (ops.can_operate: admins everywhere, testers staging and development, developers development).
--
-- Message: {"environment_id", "first_seq", "last_seq", ["partial": true,] "lines": [{"seq", "ts", "stream", "level", "line"}]}

create table ops.odoo_log_state (
  environment_id uuid primary key references ops.environments (id) on delete cascade,
  -- The followers' lease: the worker tails while it lies ahead.
  follow_until timestamptz not null,
  -- The worker tailing it, and until when its claim holds (renewed while it tails).
  tailer text,
  tailer_until timestamptz,
  log_seq bigint not null default 0,
  announced_seq bigint not null default 0,
  -- Where the last tail stopped (a file's identity and byte offset on the worker): a follower who comes
  -- back later resumes there instead of seeing the same lines again under new numbers.
  source text,
  source_offset bigint
);
alter table ops.odoo_log_state enable row level security;
revoke all on ops.odoo_log_state from public, anon, authenticated, service_role;

create table ops.odoo_log_lines (
  environment_id uuid not null references ops.environments (id) on delete cascade,
  seq bigint not null,
  ts timestamptz not null,
  level text not null constraint odoo_log_lines_level check (level in ('debug', 'info', 'warning', 'error', 'critical')),
  line text not null,
  primary key (environment_id, seq)
);
alter table ops.odoo_log_lines enable row level security;
revoke all on ops.odoo_log_lines from public, anon, authenticated, service_role;
grant select on ops.odoo_log_lines to authenticated;
-- The API checks the right once per request; this is the same rule for anything else that reads.
create policy odoo_log_lines_select on ops.odoo_log_lines for select to authenticated
  using (exists (select 1 from ops.environments e where e.id = odoo_log_lines.environment_id and ops.can_operate(e.project_id, e.stage)));

-- Starts or renews the lease of the calling member (who must be allowed to operate the environment);
-- wakes the workers when nobody was following. Returns the lease's length and the last seq stored.
create function ops.follow_odoo_log(p_env uuid) returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  c_lease constant interval := interval '5 minutes';
  v_env record;
  v_was timestamptz;
  v_seq bigint;
begin
  select e.id, e.project_id, e.stage into v_env from ops.environments e where e.id = p_env;
  if not found or not ops.can_operate(v_env.project_id, v_env.stage) then
    raise exception 'not allowed to follow the Odoo log of this environment' using errcode = '42501';
  end if;
  select s.follow_until into v_was from ops.odoo_log_state s where s.environment_id = p_env for update;
  insert into ops.odoo_log_state (environment_id, follow_until) values (p_env, now() + c_lease)
  on conflict (environment_id) do update set follow_until = excluded.follow_until
  returning log_seq into v_seq;
  if v_was is null or v_was <= now() then
    perform pg_notify('ops_odoo_log', p_env::text);
  end if;
  return jsonb_build_object('lease_seconds', extract(epoch from c_lease)::integer, 'last_seq', v_seq);
end
$$;
revoke execute on function ops.follow_odoo_log(uuid) from public, anon;
grant execute on function ops.follow_odoo_log(uuid) to authenticated;

-- The worker's side. Claims (or renews) the tail of an environment someone follows: null when nobody
-- does any more, or another worker holds a live claim. Returns where the last tail stopped.
create function ops.claim_odoo_log_tail(p_env uuid, p_worker text, p_seconds integer) returns jsonb
language sql security definer set search_path = '' as $$
  update ops.odoo_log_state s set tailer = p_worker, tailer_until = now() + make_interval(secs => p_seconds)
  where s.environment_id = p_env and s.follow_until > now()
    and (s.tailer is null or s.tailer = p_worker or s.tailer_until < now())
  returning jsonb_build_object('source', s.source, 'offset', s.source_offset, 'last_seq', s.log_seq)
$$;

-- Environments followed now whose tail nobody holds (or this worker does): what a worker looks at.
create function ops.odoo_logs_to_tail(p_worker text) returns table (environment_id uuid)
language sql stable security definer set search_path = '' as $$
  select s.environment_id from ops.odoo_log_state s
  where s.follow_until > now() and (s.tailer is null or s.tailer = p_worker or s.tailer_until < now())
$$;

-- The worker stops tailing (the lease lapsed, it shuts down): the claim goes, the position stays.
create function ops.release_odoo_log_tail(p_env uuid, p_worker text, p_source text, p_offset bigint) returns void
language sql security definer set search_path = '' as $$
  update ops.odoo_log_state set tailer = null, tailer_until = null,
    source = coalesce(p_source, source), source_offset = case when p_source is null then source_offset else p_offset end
  where environment_id = p_env and tailer = p_worker
$$;

-- Internal: announces the lines up to p_last not announced yet on odoo-log:<env> (as ops.announce_run_log).
create function ops.announce_odoo_log(p_env uuid, p_last bigint) returns void
language plpgsql security definer set search_path = '' as $$
declare
  c_max constant integer := 2048 - 180 - 46 - 2; -- the envelope has a uuid and two 19-digit numbers
  c_max_lines constant integer := c_max / 95;
  v_topic text := 'odoo-log:' || p_env;
  v_from bigint;
  v_lines text;
  v_bytes bigint;
begin
  select s.announced_seq + 1 into v_from from ops.odoo_log_state s where s.environment_id = p_env;
  if v_from is null or p_last is null or v_from > p_last then
    return;
  end if;
  update ops.odoo_log_state set announced_seq = p_last where environment_id = p_env;
  if not ops.broadcast_wanted(v_topic) then
    return;
  end if;
  if p_last - v_from + 1 <= c_max_lines
     and (select sum(octet_length(l.line) + 95) from ops.odoo_log_lines l where l.environment_id = p_env and l.seq between v_from and p_last) <= c_max then
    select '[' || string_agg(r.j, ', ' order by r.seq) || ']', sum(octet_length(r.j) + 2)
    into v_lines, v_bytes
    from (select l.seq, jsonb_build_object('seq', l.seq, 'ts', ops.iso_time(l.ts), 'level', l.level,
                   'stream', case when l.level in ('error', 'critical') then 'stderr' else 'stdout' end, 'line', l.line)::text as j
          from ops.odoo_log_lines l where l.environment_id = p_env and l.seq between v_from and p_last) r;
    if v_bytes > c_max then
      v_lines := null;
    end if;
  end if;
  perform realtime.send(('{"environment_id":"' || p_env || '","first_seq":' || v_from || ',"last_seq":' || p_last
                         || case when v_lines is null then ',"partial":true' else '' end
                         || ',"lines":' || coalesce(v_lines, '[]') || '}')::jsonb,
                        'log', v_topic, true);
end
$$;

-- Appends a batch (parallel arrays; ts ISO 8601 or null = now()) and the tail's position after it, keeps
-- the last c_keep lines, announces when asked; returns the last seq, or null when this worker no longer
-- holds the tail or nobody follows any more (the worker then stops).
create function ops.append_odoo_log(p_env uuid, p_worker text, p_ts text[], p_levels text[], p_lines text[], p_announce boolean,
                                    p_source text, p_offset bigint)
returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  c_keep constant integer := 20000;
  v_count integer := coalesce(cardinality(p_lines), 0);
  v_last bigint;
begin
  if coalesce(cardinality(p_ts), 0) <> v_count or coalesce(cardinality(p_levels), 0) <> v_count then
    raise exception 'ts, level and line arrays differ in length' using errcode = '22023';
  end if;
  update ops.odoo_log_state set log_seq = log_seq + v_count,
    source = coalesce(p_source, source), source_offset = case when p_source is null then source_offset else p_offset end
  where environment_id = p_env and tailer = p_worker and tailer_until > now() and follow_until > now()
  returning log_seq into v_last;
  if not found then
    return null;
  end if;
  if v_count > 0 then
    insert into ops.odoo_log_lines (environment_id, seq, ts, level, line)
    select p_env, v_last - v_count + u.o, coalesce(u.ts::timestamptz, now()), u.level, u.line
    from unnest(p_ts, p_levels, p_lines) with ordinality as u (ts, level, line, o);
    delete from ops.odoo_log_lines where environment_id = p_env and seq <= v_last - c_keep;
  end if;
  if p_announce then
    perform ops.announce_odoo_log(p_env, v_last);
  end if;
  return v_last;
end
$$;

revoke execute on function ops.claim_odoo_log_tail(uuid, text, integer), ops.odoo_logs_to_tail(text),
  ops.release_odoo_log_tail(uuid, text, text, bigint), ops.announce_odoo_log(uuid, bigint),
  ops.append_odoo_log(uuid, text, text[], text[], text[], boolean, text, bigint) from public, anon, authenticated, service_role;
grant execute on function ops.claim_odoo_log_tail(uuid, text, integer), ops.odoo_logs_to_tail(text),
  ops.release_odoo_log_tail(uuid, text, text, bigint), ops.append_odoo_log(uuid, text, text[], text[], text[], boolean, text, bigint) to service_role;

-- The topics members may join: those of 20261122000400_ops_realtime.sql, and odoo-log:<environment id>
-- for members who may operate the environment's stage (the log may show anything Odoo prints).
create or replace function ops.can_join_topic(p_topic text) returns boolean
language plpgsql stable set search_path = '' as $$
begin
  if p_topic ~ '^run:[1-9][0-9]{0,17}$' then
    return ops.can_read_run(substr(p_topic, 5)::bigint);
  elsif p_topic ~ '^project:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return ops.is_member(substr(p_topic, 9)::uuid);
  elsif p_topic ~ '^odoo-log:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return exists (select 1 from ops.environments e
                   where e.id = substr(p_topic, 10)::uuid and ops.can_operate(e.project_id, e.stage));
  end if;
  return false;
end
$$;
