-- The Realtime budget (issue 15): a run's log is announced, not shipped, over Realtime.
--
-- On Supabase every broadcast is stored in realtime.messages for three days and counts against the
-- project's message quota when it arrives, watched or not (Free: 100 messages/s, 2 M a month, 500 MB of
-- database). Until now each stored batch was one message of up to 200 KB, up to ~10 a second per run:
-- up to 7 GB an hour for one chatty run. Now:
--   * a 'log' message announces the lines stored since the previous one (first_seq..last_seq) and
--     carries them when they all fit in 2 KB as Supabase stores the payload (the id realtime.send adds
--     included); otherwise it carries none and says partial. Viewers read what a message does not carry
--     from the API by sequence number (contract/log-sequence.ts), as they already did after a partial
--     batch or a reconnect. Lines after a gap cannot be shown before the gap is filled, and the page
--     that fills it holds them too, so the newest few lines of a big batch would be stored for nothing.
--   * how often: the worker asks for an announcement at most every 250 ms per run (LogBatcher,
--     server/realtime/budget.ts); it writes lines as often as before, without announcing them, and
--     announces what is left 250 ms after the last announcement. System lines (cancel requested,
--     released, the sweep's verdicts) and the end of a run announce at once: a few per run.
-- Message: {"run_id", "first_seq", "last_seq", ["partial": true,] "lines": [{"seq", "ts", "stream", "line"}]}
-- with lines either first_seq..last_seq or none. Announcements of a run are contiguous and in order:
-- each one starts after the last seq the previous one announced (ops.run_log_announcements).

-- The last seq announced per run. Only the functions below touch it; no policy lets anyone else.
create table ops.run_log_announcements (
  run_id bigint primary key references ops.runs (id) on delete cascade,
  seq bigint not null
);
alter table ops.run_log_announcements enable row level security;
revoke all on ops.run_log_announcements from public, anon, authenticated, service_role;

-- Internal: announces the run's lines stored up to p_last and not announced yet (see above). The
-- caller holds the run's row lock (it has just updated log_seq, or locked the row), so announcements
-- of one run never overlap.
create function ops.announce_run_log(p_run bigint, p_last bigint) returns void
language plpgsql security definer set search_path = '' as $$
declare
  -- Bytes the lines array may take in jsonb's text form (what realtime.messages stores): 2048, less the
  -- envelope with three 19-digit numbers and "partial" (126), the id Supabase adds (46), and "[]" (2).
  c_max constant integer := 2048 - 126 - 46 - 2;
  -- No line takes fewer than 76 bytes ({"ts": "<24>", "seq": 1, "line": "", "stream": "stdout"}) plus
  -- the ", " between lines: more pending lines than this cannot fit.
  c_max_lines constant integer := c_max / 78;
  v_from bigint;
  v_lines text;
  v_bytes bigint;
begin
  if not ops.broadcast_wanted('run:' || p_run) then
    return;
  end if;
  select a.seq + 1 into v_from from ops.run_log_announcements a where a.run_id = p_run;
  v_from := coalesce(v_from, 1);
  if p_last is null or v_from > p_last then
    return;
  end if;
  if p_last - v_from + 1 <= c_max_lines
     -- A lower bound first (a line's text, and 76 bytes around it): a long line is never rendered.
     and (select sum(octet_length(l.line) + 78) from ops.run_logs l where l.run_id = p_run and l.seq between v_from and p_last) <= c_max then
    select '[' || string_agg(r.j, ', ' order by r.seq) || ']', sum(octet_length(r.j) + 2)
    into v_lines, v_bytes
    from (select l.seq, jsonb_build_object('seq', l.seq, 'ts', ops.iso_time(l.ts), 'stream', l.stream, 'line', l.line)::text as j
          from ops.run_logs l where l.run_id = p_run and l.seq between v_from and p_last) r;
    if v_bytes > c_max then
      v_lines := null; -- escapes made it longer than its text: announced without its lines
    end if;
  end if;
  perform realtime.send(('{"run_id":' || p_run || ',"first_seq":' || v_from || ',"last_seq":' || p_last
                         || case when v_lines is null then ',"partial":true' else '' end
                         || ',"lines":' || coalesce(v_lines, '[]') || '}')::jsonb,
                        'log', 'run:' || p_run, true);
  insert into ops.run_log_announcements (run_id, seq) values (p_run, p_last)
  on conflict (run_id) do update set seq = excluded.seq;
end
$$;

-- Appends a batch of lines (parallel arrays; ts as ISO 8601 text, null = now(); stream null = stdout)
-- and, when p_announce, announces every line not announced yet (this batch's and earlier unannounced
-- ones); returns the last sequence number, or null when the worker no longer holds the run. An empty
-- batch with p_announce announces what is pending: the worker's announcement after a quiet spell.
create function ops.append_run_logs(p_run bigint, p_worker text, p_ts text[], p_streams text[], p_lines text[], p_announce boolean)
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
    select log_seq into v_last from ops.runs where id = p_run and lease_owner = p_worker for update;
    if found and p_announce then
      perform ops.announce_run_log(p_run, v_last);
    end if;
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
  if p_announce then
    perform ops.announce_run_log(p_run, v_last);
  end if;
  return v_last;
end
$$;

-- The form without p_announce (the finish's last lines through the jsonb form, and servers older than
-- this migration) announces every time.
create or replace function ops.append_run_logs(p_run bigint, p_worker text, p_ts text[], p_streams text[], p_lines text[])
returns bigint
language sql security definer set search_path = '' as $$
  select ops.append_run_logs(p_run, p_worker, p_ts, p_streams, p_lines, true)
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
  perform ops.announce_run_log(p_run, v_seq);
end
$$;

-- A run that stops running (finished, released, recovered by the sweep) announces what its worker
-- had not: its last batch may have been written unannounced, and the finish may bring no lines. Named
-- to fire before runs_broadcast_update, so viewers hear of the lines before the end.
create function ops.announce_run_log_at_end() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform ops.announce_run_log(new.id, new.log_seq);
  return null;
end
$$;
create trigger runs_announce_log_at_end after update of status on ops.runs
  for each row when (old.status = 'running' and new.status <> 'running')
  execute function ops.announce_run_log_at_end();

drop function ops.broadcast_log_batch(bigint, bigint, text[], text[], text[]);

revoke execute on function ops.announce_run_log(bigint, bigint), ops.announce_run_log_at_end(),
  ops.append_run_logs(bigint, text, text[], text[], text[], boolean) from public, anon, authenticated, service_role;
grant execute on function ops.append_run_logs(bigint, text, text[], text[], text[], boolean) to service_role;
