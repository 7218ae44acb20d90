-- Log batches as arrays, and one Realtime message per batch however big the batch is.
--
-- Before: ops.append_run_logs took the batch as jsonb (parsed twice: once to store, once to broadcast),
-- and a batch whose JSON passed 200 KB was cut into as many messages as it took. A run printing
-- 60,000 lines a second then sent ~60 messages a second, against Supabase's 100-500 per project.
-- Now: the worker sends three parallel text arrays (ts, stream, line), and each batch is announced by
-- exactly one 'log' message carrying the newest lines that fit under 200 KB. When they are not all of
-- the batch, the message says "partial": true, and first_seq..last_seq still names the whole batch:
-- viewers fetch the lines they did not receive from the API (GET /api/runs/<id>/logs?after=<seq>), as
-- they already do after a reconnect. Realtime is the live tail; the log table is the record.
--
-- Message: {"run_id", "first_seq", "last_seq", ["partial": true,] "lines": [{"seq", "ts", "stream", "line"}]}
-- where lines are the last lines of first_seq..last_seq, consecutive, ending at last_seq (possibly none,
-- when the last line alone is longer than a message may be).

-- The foreign key from run_logs to runs checked every line against its run: a third of the cost of
-- storing a line. Lines are written only by the functions below, right after they updated (so found)
-- their run; deleting a run still deletes its lines, by trigger.
alter table ops.run_logs drop constraint run_logs_run_id_fkey;

create function ops.delete_run_logs() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from ops.run_logs l using deleted_runs d where l.run_id = d.id;
  return null;
end
$$;
create trigger runs_delete_logs after delete on ops.runs
  referencing old table as deleted_runs for each statement execute function ops.delete_run_logs();

-- Internal: broadcasts the batch p_first.. on the run's topic (see above). The arrays are the batch's
-- lines in order; a null ts or stream means now() / stdout, as when they were stored.
create function ops.broadcast_log_batch(p_run bigint, p_first bigint, p_ts text[], p_streams text[], p_lines text[])
returns void
language plpgsql security definer set search_path = '' as $$
declare
  -- Supabase's smallest broadcast limit is 256 KB (Free plan); stay well under it, envelope included.
  c_max constant integer := 200000 - 200;
  v_count integer := cardinality(p_lines);
  v_off integer;
  v_json text;
  v_from integer;
begin
  if v_count is null or v_count = 0 or not ops.broadcast_wanted('run:' || p_run) then
    return;
  end if;
  -- The newest lines whose JSON fits. Every line takes at least 55 bytes of JSON (seq, ts, stream, the
  -- keys), so no more than the last 4000 can: only those are rendered, and their exact size decides.
  -- Rendered as text and parsed once: about twice as fast as jsonb_build_object per line. The + 10 covers
  -- what jsonb's text form adds per line (", " and ": "), which is how realtime.messages measures it.
  v_off := greatest(v_count - 4000, 0);
  with rendered as (
    select v_off + u.o as o,
           '{"seq":' || (p_first + v_off + u.o - 1)
           || ',"ts":' || to_json(coalesce(u.ts, ops.iso_time(now())))::text
           || ',"stream":' || to_json(coalesce(u.stream, 'stdout'))::text
           || ',"line":' || to_json(u.line)::text || '}' as j
    from unnest(p_ts[v_off + 1 : v_count], p_streams[v_off + 1 : v_count], p_lines[v_off + 1 : v_count])
         with ordinality as u (ts, stream, line, o)
  ), sized as (
    select rendered.o, rendered.j, sum(octet_length(rendered.j) + 10) over (order by rendered.o desc) as bytes
    from rendered
  )
  select '[' || coalesce(string_agg(sized.j, ',' order by sized.o), '') || ']', coalesce(min(sized.o), v_count + 1)
  into v_json, v_from
  from sized where sized.bytes <= c_max;
  perform realtime.send(('{"run_id":' || p_run || ',"first_seq":' || p_first || ',"last_seq":' || (p_first + v_count - 1)
                         || case when v_from > 1 then ',"partial":true' else '' end
                         || ',"lines":' || v_json || '}')::jsonb,
                        'log', 'run:' || p_run, true);
end
$$;

-- Appends a batch of lines (parallel arrays; ts as ISO 8601 text, null = now(); stream null = stdout),
-- broadcasts it as one 'log' message on run:<id>, and returns the last sequence number, or null when
-- the worker no longer holds the run.
create function ops.append_run_logs(p_run bigint, p_worker text, p_ts text[], p_streams text[], p_lines text[])
returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  v_count integer := coalesce(cardinality(p_lines), 0);
  v_last bigint;
  v_first bigint;
begin
  if coalesce(cardinality(p_ts), 0) <> v_count or coalesce(cardinality(p_streams), 0) <> v_count then
    raise exception 'ts, stream and line arrays differ in length (% / % / %)',
      cardinality(p_ts), cardinality(p_streams), v_count using errcode = '22023';
  end if;
  if v_count = 0 then
    select log_seq into v_last from ops.runs where id = p_run and lease_owner = p_worker;
    return v_last;
  end if;
  update ops.runs set log_seq = log_seq + v_count
  where id = p_run and status = 'running' and lease_owner = p_worker
  returning log_seq into v_last;
  if not found then
    return null;
  end if;
  v_first := v_last - v_count + 1;
  insert into ops.run_logs (run_id, seq, ts, stream, line)
  select p_run, v_first + u.o - 1, coalesce(u.ts::timestamptz, now()), coalesce(u.stream, 'stdout'), u.line
  from unnest(p_ts, p_streams, p_lines) with ordinality as u (ts, stream, line, o);
  perform ops.broadcast_log_batch(p_run, v_first, p_ts, p_streams, p_lines);
  return v_last;
end
$$;

-- The jsonb form ([{"ts", "stream", "line"}...]) stays for ops.finish_run and ops.finish_and_claim,
-- whose last lines come that way; it now takes the same path.
create or replace function ops.append_run_logs(p_run bigint, p_worker text, p_lines jsonb) returns bigint
language sql security definer set search_path = '' as $$
  select ops.append_run_logs(p_run, p_worker,
    array(select case when jsonb_typeof(l.value -> 'ts') = 'string' then l.value ->> 'ts' end
          from jsonb_array_elements(p_lines) with ordinality as l (value, ord) order by l.ord),
    array(select l.value ->> 'stream' from jsonb_array_elements(p_lines) with ordinality as l (value, ord) order by l.ord),
    array(select l.value ->> 'line' from jsonb_array_elements(p_lines) with ordinality as l (value, ord) order by l.ord))
$$;

create or replace function ops.log_system(p_run bigint, p_line text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_seq bigint;
begin
  update ops.runs set log_seq = log_seq + 1 where id = p_run returning log_seq into v_seq;
  if not found then
    return;
  end if;
  insert into ops.run_logs (run_id, seq, ts, stream, line) values (p_run, v_seq, now(), 'system', p_line);
  perform ops.broadcast_log_batch(p_run, v_seq, array[ops.iso_time(now())], array['system'], array[p_line]);
end
$$;

drop function ops.broadcast_log_lines(bigint, jsonb);
drop function ops.send_log_lines(bigint, jsonb);

revoke execute on function ops.delete_run_logs(), ops.broadcast_log_batch(bigint, bigint, text[], text[], text[]),
  ops.append_run_logs(bigint, text, text[], text[], text[]) from public, anon, authenticated, service_role;
grant execute on function ops.append_run_logs(bigint, text, text[], text[], text[]) to service_role;

-- Reading a log page called ops.can_read_run once per line (1.5 s for 5,000 lines): a viewer catching
-- up after a partial batch fell ever further behind. The same rule as a semi-join on ops.runs, whose
-- own policy (members of the run's project) then runs once per page: ~70 ms for 5,000 lines.
drop policy run_logs_select on ops.run_logs;
create policy run_logs_select on ops.run_logs for select to authenticated
  using (exists (select 1 from ops.runs r where r.id = run_logs.run_id));
