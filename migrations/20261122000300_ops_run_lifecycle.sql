-- The run life cycle: queue, claim with a lease, heartbeat, append logs, finish, release, cancel,
-- recover expired leases. Every state change goes through these functions; workers are woken by
-- NOTIFY on channel ops_runs.

-- Wakes workers when a run becomes queued (new, requeued after a lost lease, released). Nothing else
-- notifies from inside a writing transaction: a NOTIFY makes its transaction hold a database-wide lock
-- until its commit is flushed, which serialized claims and finishes when every state change notified
-- (bench:queue, about half the throughput). Cancels are seen by the worker's heartbeat, and a freed
-- environment is announced by ops.notify_waiting from a transaction that writes nothing.
create function ops.notify_run_change() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.status = 'queued' then
    perform pg_notify('ops_runs', json_build_object('id', new.id, 'environment_id', new.environment_id, 'kind', new.kind)::text);
  end if;
  return null;
end
$$;
create trigger runs_notify after insert or update of status on ops.runs
  for each row execute function ops.notify_run_change();

create function ops.audit_run_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    perform ops.audit(new.project_id, 'runs.queued', 'runs:' || new.id, jsonb_strip_nulls(jsonb_build_object(
      'kind', new.kind, 'environment_id', new.environment_id, 'requested_by', new.requested_by,
      'approval_id', new.approval_id)));
  elsif new.cancel_requested_at is distinct from old.cancel_requested_at then
    perform ops.audit(new.project_id, 'runs.cancel_requested', 'runs:' || new.id, '{}'::jsonb);
  end if;
  -- How runs end is the runs table's own record; the audit log keeps what people asked for.
  return null;
end
$$;
create trigger runs_audit after insert or update of cancel_requested_at on ops.runs
  for each row execute function ops.audit_run_change();

-- Enforced for every writer, the service role included: a restore into production needs an approval
-- for exactly this restore, given by a member other than the one who queues it, used once.
create function ops.runs_require_approval() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_stage ops.stage;
  v_approval ops.approvals;
begin
  select e.stage into v_stage from ops.environments e where e.id = new.environment_id;
  if v_stage is distinct from 'production' or new.kind <> 'restore' then
    return new;
  end if;
  if new.approval_id is null then
    raise exception 'a restore into production needs an approval from another member'
      using errcode = '42501', hint = 'Request one (odooops approval request), have a second admin approve it, then queue the restore with --approval.';
  end if;
  select * into v_approval from ops.approvals a where a.id = new.approval_id for update;
  if not found or v_approval.environment_id <> new.environment_id or v_approval.kind <> new.kind then
    raise exception 'approval % is not for a % of this environment', new.approval_id, new.kind using errcode = '42501';
  end if;
  if v_approval.status <> 'approved' then
    raise exception 'approval % is %, not approved', new.approval_id, v_approval.status using errcode = '42501';
  end if;
  if v_approval.decided_by is not distinct from new.requested_by then
    raise exception 'approval % was given by the member who queues the restore; a second person must approve', new.approval_id
      using errcode = '42501';
  end if;
  if v_approval.used_by_run_id is not null then
    raise exception 'approval % was already used by run %', new.approval_id, v_approval.used_by_run_id using errcode = '42501';
  end if;
  if v_approval.params <> new.params then
    raise exception 'approval % was given for other parameters than this restore', new.approval_id using errcode = '42501';
  end if;
  if v_approval.decided_at < now() - interval '24 hours' then
    raise exception 'approval % expired (approvals are valid for 24 hours)', new.approval_id using errcode = '42501';
  end if;
  update ops.approvals set used_by_run_id = new.id where id = new.approval_id;
  return new;
end
$$;
create trigger runs_require_approval before insert on ops.runs
  for each row execute function ops.runs_require_approval();

-- Broadcast from Database ---------------------------------------------------------------------------
-- Viewers follow runs over private Realtime Broadcast topics (policies: 20261122000400_ops_realtime.sql):
--   run:<id>          event 'log': one message per stored batch of log lines, never one per line;
--   project:<uuid>    event 'run': one message per change of a run's state.
-- realtime.send stores the message in realtime.messages, which Supabase Realtime (or the local gateway)
-- delivers to the members who joined the topic.

-- Timestamps as the API writes them (JavaScript's toISOString), so live and fetched data look alike.
-- No SET clause: the planner inlines it, which matters once per log line.
create function ops.iso_time(p_ts timestamptz) returns text
language sql stable as $$
  select pg_catalog.to_char(p_ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Internal: one 'log' message on the run's topic, {"run_id", "first_seq", "last_seq", "lines"}.
-- Whether anyone can receive a broadcast on a topic. On Supabase always (its Realtime reads every
-- message); without it, only while a local gateway watches the topic (realtime.odooops_gateway_topics,
-- see the shims), so an unwatched run does not even build its payloads. plpgsql, not sql: the table
-- does not exist on Supabase, and this body only reads it where it does.
create function ops.broadcast_wanted(p_topic text) returns boolean
language plpgsql stable security definer set search_path = '' as $$
begin
  if to_regclass('realtime.odooops_gateway_topics') is null then
    return true;
  end if;
  return exists (select 1 from realtime.odooops_gateway_topics g where g.topic in (p_topic, '*'));
end
$$;

create function ops.send_log_lines(p_run bigint, p_lines jsonb) returns void
language sql security definer set search_path = '' as $$
  select realtime.send(jsonb_build_object('run_id', p_run, 'first_seq', p_lines -> 0 -> 'seq',
                                          'last_seq', p_lines -> -1 -> 'seq', 'lines', p_lines),
                       'log', 'run:' || p_run, true)
$$;

-- Internal: broadcasts stored log lines ([{"seq", "ts", "stream", "line"}...], consecutive seqs) on the
-- run's topic. One message per batch; a batch whose JSON would exceed Supabase's smallest broadcast
-- limit (256 KB on the Free plan) is cut into as few messages as fit, in order, and a single line too
-- long for any message travels truncated, flagged "truncated": true (the log table keeps it whole).
create function ops.broadcast_log_lines(p_run bigint, p_lines jsonb) returns void
language plpgsql security definer set search_path = '' as $$
declare
  c_max constant integer := 200000 - 200; -- bytes of lines JSON per message, envelope aside (see append_run_logs)
  c_line_chars constant integer := 32768; -- a truncated line: even escaped (6 bytes a char) it fits
  v_sizes integer[];
  v_start integer := 0; -- 0-based index of the first line of the message being filled
  v_size integer := 0;
  v_line jsonb;
begin
  if p_lines is null or jsonb_array_length(p_lines) = 0 or not ops.broadcast_wanted('run:' || p_run) then
    return;
  end if;
  if octet_length(p_lines::text) <= c_max then
    perform ops.send_log_lines(p_run, p_lines);
    return;
  end if;
  -- Rare (long lines): measure each line, cut greedily, send slices of the array.
  select array_agg(octet_length(l.value::text) + 1 order by l.ord) into v_sizes
  from jsonb_array_elements(p_lines) with ordinality as l (value, ord);
  for i in 0 .. cardinality(v_sizes) - 1 loop
    if v_sizes[i + 1] > c_max then
      if i > v_start then
        perform ops.send_log_lines(p_run, jsonb_path_query_array(p_lines, format('$[%s to %s]', v_start, i - 1)::jsonpath));
      end if;
      v_line := p_lines -> i;
      perform ops.send_log_lines(p_run, jsonb_build_array(
        v_line || jsonb_build_object('line', left(v_line ->> 'line', c_line_chars), 'truncated', true)));
      v_start := i + 1;
      v_size := 0;
    elsif v_size + v_sizes[i + 1] > c_max then
      perform ops.send_log_lines(p_run, jsonb_path_query_array(p_lines, format('$[%s to %s]', v_start, i - 1)::jsonpath));
      v_start := i;
      v_size := v_sizes[i + 1];
    else
      v_size := v_size + v_sizes[i + 1];
    end if;
  end loop;
  if cardinality(v_sizes) > v_start then
    perform ops.send_log_lines(p_run, jsonb_path_query_array(p_lines, format('$[%s to last]', v_start)::jsonpath));
  end if;
end
$$;

-- One 'run' message on the project's topic per change a viewer must see: queued (insert or requeue),
-- claimed (running, attempts + 1), finished, cancel requested. Every such change is one UPDATE in the
-- functions below, so one message; lease renewals and log appends change none of these columns.
create function ops.broadcast_run_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if not ops.broadcast_wanted('project:' || new.project_id) then
    return null;
  end if;
  perform realtime.send(jsonb_build_object(
      'id', new.id, 'project_id', new.project_id, 'environment_id', new.environment_id, 'kind', new.kind,
      'status', new.status, 'attempts', new.attempts, 'error', left(new.error, 4000),
      'queued_at', ops.iso_time(new.queued_at), 'started_at', ops.iso_time(new.started_at),
      'finished_at', ops.iso_time(new.finished_at), 'cancel_requested', new.cancel_requested_at is not null,
      'last_seq', new.log_seq),
    'run', 'project:' || new.project_id, true);
  return null;
end
$$;
create trigger runs_broadcast_insert after insert on ops.runs
  for each row execute function ops.broadcast_run_change();
create trigger runs_broadcast_update after update of status, attempts, cancel_requested_at on ops.runs
  for each row when (old.status is distinct from new.status or old.attempts is distinct from new.attempts
                     or old.cancel_requested_at is distinct from new.cancel_requested_at)
  execute function ops.broadcast_run_change();

-- Internal: a system line in a run's log, numbered after the worker's lines, and broadcast.
create function ops.log_system(p_run bigint, p_line text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_seq bigint;
begin
  update ops.runs set log_seq = log_seq + 1 where id = p_run returning log_seq into v_seq;
  if not found then
    return;
  end if;
  insert into ops.run_logs (run_id, seq, ts, stream, line) values (p_run, v_seq, now(), 'system', p_line);
  perform ops.broadcast_log_lines(p_run, jsonb_build_array(jsonb_build_object(
    'seq', v_seq, 'ts', ops.iso_time(now()), 'stream', 'system', 'line', p_line)));
end
$$;

-- Queue -------------------------------------------------------------------------------------------
-- Returns the run and whether it was created now (false: the idempotency key named an identical run).
create function ops.queue_run(p_environment uuid, p_kind text, p_params jsonb default '{}'::jsonb,
                              p_idempotency_key text default null, p_approval uuid default null,
                              p_max_attempts integer default 3)
returns table (run_id bigint, created boolean)
language plpgsql security definer set search_path = '' as $$
declare
  v_env ops.environments;
  v_role ops.member_role;
  v_existing ops.runs;
  v_params jsonb := coalesce(p_params, '{}'::jsonb);
begin
  select * into v_env from ops.environments e where e.id = p_environment;
  v_role := case when v_env.id is null then null else ops.member_role(v_env.project_id) end;
  if v_env.id is null or (v_role is null and auth.role() is distinct from 'service_role') then
    raise exception 'environment % not found', p_environment using errcode = 'P0002';
  end if;
  if not exists (select 1 from ops.run_kinds k where k.kind = p_kind) then
    raise exception 'unknown run kind "%"', p_kind using errcode = '22023',
      hint = 'Known kinds: ' || coalesce((select string_agg(kind, ', ' order by kind) from ops.run_kinds), 'none (no worker has started yet)') || '.';
  end if;
  if auth.role() is distinct from 'service_role' and not ops.role_can_operate(v_role, v_env.stage) then
    raise exception 'a % cannot queue runs on % environments', v_role, v_env.stage using errcode = '42501',
      hint = case v_env.stage when 'production' then 'Ask a project admin.' else 'Ask a project admin for the tester or admin role.' end;
  end if;
  -- Twice: a concurrent request with the same key may insert between our look-up and our insert.
  for i in 1..2 loop
    if p_idempotency_key is not null then
      select * into v_existing from ops.runs r where r.project_id = v_env.project_id and r.idempotency_key = p_idempotency_key;
      if found then
        if v_existing.environment_id = p_environment and v_existing.kind = p_kind and v_existing.params = v_params then
          return query select v_existing.id, false;
          return;
        end if;
        raise exception 'idempotency key "%" was already used for run % with other arguments', p_idempotency_key, v_existing.id
          using errcode = '23505', hint = 'Use a new key for a different run.';
      end if;
    end if;
    begin
      return query
        insert into ops.runs (project_id, environment_id, kind, params, requested_by, idempotency_key, approval_id, max_attempts)
        values (v_env.project_id, p_environment, p_kind, v_params, auth.uid(), p_idempotency_key, p_approval, p_max_attempts)
        returning id, true;
      return;
    exception when unique_violation then
      if i = 2 or p_idempotency_key is null then
        raise;
      end if;
    end;
  end loop;
end
$$;

-- Claim -------------------------------------------------------------------------------------------
-- Takes the oldest queued run, of the given kinds, whose environment is free. Locking the environment
-- row with SKIP LOCKED and setting active_run_id serializes claims per environment: a concurrent claim
-- either skips the locked row or, once it is committed, re-checks active_run_id and skips it too.
create function ops.claim_run(p_worker text, p_lease_seconds integer, p_kinds text[] default null)
returns setof ops.runs
language plpgsql security definer set search_path = '' as $$
declare
  v_run bigint;
  v_env uuid;
begin
  select r.id, e.id into v_run, v_env
  from ops.runs r join ops.environments e on e.id = r.environment_id
  where r.status = 'queued' and e.active_run_id is null and (p_kinds is null or r.kind = any (p_kinds))
  order by r.id
  limit 1
  for update of r, e skip locked;
  if v_run is null then
    return;
  end if;
  update ops.environments set active_run_id = v_run where id = v_env;
  return query
    update ops.runs set status = 'running', attempts = attempts + 1, lease_owner = p_worker,
      lease_expires_at = now() + make_interval(secs => p_lease_seconds), heartbeat_at = now(),
      started_at = coalesce(started_at, now())
    where id = v_run
    returning *;
end
$$;

-- Heartbeat: 'ok', 'cancel' (a member asked to cancel; stop and finish as cancelled) or 'lost' (this
-- worker no longer holds the run: stop without finishing it).
create function ops.heartbeat_run(p_run bigint, p_worker text, p_lease_seconds integer) returns text
language plpgsql security definer set search_path = '' as $$
declare
  v_cancel timestamptz;
begin
  update ops.runs set lease_expires_at = now() + make_interval(secs => p_lease_seconds), heartbeat_at = now()
  where id = p_run and status = 'running' and lease_owner = p_worker
  returning cancel_requested_at into v_cancel;
  if not found then
    return 'lost';
  end if;
  return case when v_cancel is null then 'ok' else 'cancel' end;
end
$$;

-- Appends a batch of lines ([{"stream": "stdout", "line": "...", "ts": "..."}]), broadcasts it as one
-- 'log' message on run:<id>, and returns the last sequence number, or null when the worker no longer
-- holds the run.
create function ops.append_run_logs(p_run bigint, p_worker text, p_lines jsonb) returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  v_count integer := jsonb_array_length(p_lines);
  v_last bigint;
  v_first bigint;
  v_lines text;
  c_max constant integer := 200000 - 200; -- as in ops.broadcast_log_lines
begin
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
  select p_run, v_first + l.ord - 1, coalesce((l.value ->> 'ts')::timestamptz, now()),
         coalesce(l.value ->> 'stream', 'stdout'), l.value ->> 'line'
  from jsonb_array_elements(p_lines) with ordinality as l (value, ord);
  if not ops.broadcast_wanted('run:' || p_run) then
    return v_last;
  end if;
  -- The broadcast, written as JSON text and parsed once: about twice as fast as jsonb_agg of
  -- jsonb_build_object, which matters at a thousand lines a batch. Each piece is valid JSON by
  -- construction (numbers, and strings as jsonb or to_json writes them). The worker's timestamps are
  -- its toISOString(), the format the API uses, so they go out as given.
  select '[' || string_agg('{"seq":' || (v_first + l.ord - 1)
           || ',"ts":' || case when jsonb_typeof(l.value -> 'ts') = 'string' then (l.value -> 'ts')::text
                               else to_json(ops.iso_time(now()))::text end
           || ',"stream":' || case when jsonb_typeof(l.value -> 'stream') = 'string' then (l.value -> 'stream')::text
                                   else '"stdout"' end
           || ',"line":' || to_json(l.value ->> 'line')::text || '}', ',' order by l.ord) || ']'
  into v_lines
  from jsonb_array_elements(p_lines) with ordinality as l (value, ord);
  if octet_length(v_lines) <= c_max then
    perform realtime.send(('{"run_id":' || p_run || ',"first_seq":' || v_first || ',"last_seq":' || v_last
                           || ',"lines":' || v_lines || '}')::jsonb, 'log', 'run:' || p_run, true);
  else
    perform ops.broadcast_log_lines(p_run, v_lines::jsonb);
  end if;
  return v_last;
end
$$;

-- Internal: the run leaves 'running'; the environment is free again.
create function ops.leave_running(p_run bigint, p_status ops.run_status, p_error text, p_result jsonb,
                                  p_refund_attempt boolean default false)
returns void
language sql security definer set search_path = '' as $$
  update ops.runs set status = p_status, lease_owner = null, lease_expires_at = null,
    attempts = attempts - case when p_refund_attempt then 1 else 0 end,
    finished_at = case when p_status = 'queued' then null else now() end,
    error = case when p_status = 'queued' then error else p_error end,
    result = coalesce(p_result, result)
  where id = p_run;
  update ops.environments set active_run_id = null where active_run_id = p_run;
$$;

-- p_lines: the run's last log lines, written in the same transaction (one commit fewer per run).
create function ops.finish_run(p_run bigint, p_worker text, p_status ops.run_status, p_error text default null,
                               p_result jsonb default null, p_lines jsonb default '[]'::jsonb)
returns boolean
language plpgsql security definer set search_path = '' as $$
begin
  if p_status not in ('succeeded', 'failed', 'cancelled') then
    raise exception 'a run finishes as succeeded, failed or cancelled, not %', p_status using errcode = '22023';
  end if;
  perform 1 from ops.runs where id = p_run and status = 'running' and lease_owner = p_worker for update;
  if not found then
    return false;
  end if;
  if jsonb_array_length(p_lines) > 0 then
    perform ops.append_run_logs(p_run, p_worker, p_lines);
  end if;
  perform ops.leave_running(p_run, p_status, p_error, p_result);
  return true;
end
$$;

-- Finishes a run and claims the worker's next one in the same transaction: in a busy queue every run
-- then costs one commit, not two.
create function ops.finish_and_claim(p_run bigint, p_worker text, p_status ops.run_status, p_error text,
                                     p_result jsonb, p_lines jsonb, p_lease_seconds integer, p_kinds text[] default null)
returns setof ops.runs
language plpgsql security definer set search_path = '' as $$
begin
  perform ops.finish_run(p_run, p_worker, p_status, p_error, p_result, p_lines);
  return query select * from ops.claim_run(p_worker, p_lease_seconds, p_kinds);
end
$$;

-- A worker that shuts down gives its run back: queued again, and the attempt does not count.
create function ops.release_run(p_run bigint, p_worker text, p_reason text) returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  v_cancel timestamptz;
begin
  select cancel_requested_at into v_cancel from ops.runs
  where id = p_run and status = 'running' and lease_owner = p_worker for update;
  if not found then
    return false;
  end if;
  if v_cancel is not null then
    perform ops.log_system(p_run, 'cancelled while the worker was shutting down (' || p_reason || ')');
    perform ops.leave_running(p_run, 'cancelled', 'cancelled', null);
  else
    perform ops.log_system(p_run, 'released by worker ' || p_worker || ' (' || p_reason || '); queued again');
    perform ops.leave_running(p_run, 'queued', null, null, true);
  end if;
  return true;
end
$$;

-- Runs whose worker stopped renewing its lease (killed, frozen, cut off) go back to the queue until
-- they have used max_attempts, then fail; the reason is written to the run's log either way.
create function ops.recover_expired_runs() returns integer
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs;
  v_count integer := 0;
  v_why text;
begin
  for v_run in
    select * from ops.runs
    where status = 'running' and lease_expires_at < now()
    order by id
    for update skip locked
  loop
    v_why := format('worker %s stopped renewing its lease (last heartbeat %s)', v_run.lease_owner,
                    to_char(v_run.heartbeat_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    if v_run.cancel_requested_at is not null then
      perform ops.log_system(v_run.id, v_why || '; the run had been asked to cancel, so it is cancelled');
      perform ops.leave_running(v_run.id, 'cancelled', v_why, null);
    elsif v_run.attempts < v_run.max_attempts then
      perform ops.log_system(v_run.id, format('%s; queued again for attempt %s of %s', v_why, v_run.attempts + 1,
                                              v_run.max_attempts));
      perform ops.leave_running(v_run.id, 'queued', null, null);
    else
      perform ops.log_system(v_run.id, format('%s; failed after %s attempts', v_why, v_run.attempts));
      perform ops.leave_running(v_run.id, 'failed', format('%s; failed after %s attempts', v_why, v_run.attempts), null);
    end if;
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

-- Called by a worker that finished a run but has no room to take the next one of that environment:
-- tells the other workers the environment is free, if anything waits for it.
create function ops.notify_waiting(p_environment uuid) returns boolean
language plpgsql security definer set search_path = '' as $$
begin
  if exists (select 1 from ops.runs r join ops.environments e on e.id = r.environment_id
             where r.environment_id = p_environment and r.status = 'queued' and e.active_run_id is null) then
    perform pg_notify('ops_runs', json_build_object('environment_id', p_environment)::text);
    return true;
  end if;
  return false;
end
$$;

-- Workers announce the kinds they execute: [{"kind": "health", "description": "..."}].
create function ops.register_run_kinds(p_kinds jsonb) returns void
language sql security definer set search_path = '' as $$
  insert into ops.run_kinds (kind, description)
  select k ->> 'kind', coalesce(k ->> 'description', '') from jsonb_array_elements(p_kinds) k
  on conflict (kind) do update set description = excluded.description, registered_at = now()
$$;

-- Cancel: a queued run is cancelled at once; a running one is asked to stop, and its worker finishes
-- it as cancelled at its next heartbeat.
create function ops.cancel_run(p_run bigint) returns ops.run_status
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs;
  v_stage ops.stage;
begin
  select r.* into v_run from ops.runs r where r.id = p_run for update;
  if not found or (auth.role() is distinct from 'service_role' and not ops.is_member(v_run.project_id)) then
    raise exception 'run % not found', p_run using errcode = 'P0002';
  end if;
  select e.stage into v_stage from ops.environments e where e.id = v_run.environment_id;
  if auth.role() is distinct from 'service_role' and not ops.can_operate(v_run.project_id, v_stage) then
    raise exception 'your role cannot cancel runs on % environments', v_stage using errcode = '42501';
  end if;
  -- The log line first, so the state change's broadcast already counts it in last_seq.
  if v_run.status = 'queued' then
    perform ops.log_system(p_run, 'cancelled before it started');
    update ops.runs set status = 'cancelled', finished_at = now(), error = 'cancelled before it started' where id = p_run;
    return 'cancelled';
  elsif v_run.status = 'running' then
    if v_run.cancel_requested_at is null then
      perform ops.log_system(p_run, 'cancel requested');
      update ops.runs set cancel_requested_at = now() where id = p_run;
    end if;
    return 'running';
  end if;
  raise exception 'run % already finished (%)', p_run, v_run.status using errcode = '55000';
end
$$;

-- Approvals ---------------------------------------------------------------------------------------
create function ops.request_approval(p_environment uuid, p_kind text, p_params jsonb default '{}'::jsonb,
                                     p_reason text default null)
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_env ops.environments;
  v_id uuid;
begin
  select * into v_env from ops.environments e where e.id = p_environment;
  if not found or not ops.is_member(v_env.project_id) then
    raise exception 'environment % not found', p_environment using errcode = 'P0002';
  end if;
  if not ops.can_operate(v_env.project_id, v_env.stage) then
    raise exception 'your role cannot request runs on % environments', v_env.stage using errcode = '42501';
  end if;
  insert into ops.approvals (project_id, environment_id, kind, params, reason, requested_by)
  values (v_env.project_id, p_environment, p_kind, coalesce(p_params, '{}'::jsonb), p_reason, auth.uid())
  returning id into v_id;
  return v_id;
end
$$;

create function ops.decide_approval(p_approval uuid, p_approve boolean) returns ops.approval_status
language plpgsql security definer set search_path = '' as $$
declare
  v_approval ops.approvals;
  v_stage ops.stage;
begin
  select * into v_approval from ops.approvals a where a.id = p_approval for update;
  if not found or not ops.is_member(v_approval.project_id) then
    raise exception 'approval % not found', p_approval using errcode = 'P0002';
  end if;
  select e.stage into v_stage from ops.environments e where e.id = v_approval.environment_id;
  if not ops.can_operate(v_approval.project_id, v_stage) then
    raise exception 'your role cannot approve runs on % environments', v_stage using errcode = '42501';
  end if;
  if v_approval.requested_by = auth.uid() then
    raise exception 'you requested approval %; another member must decide it', p_approval using errcode = '42501';
  end if;
  if v_approval.status <> 'pending' then
    raise exception 'approval % was already %', p_approval, v_approval.status using errcode = '55000';
  end if;
  update ops.approvals set status = case when p_approve then 'approved' else 'rejected' end::ops.approval_status,
    decided_by = auth.uid(), decided_at = now()
  where id = p_approval;
  return case when p_approve then 'approved' else 'rejected' end::ops.approval_status;
end
$$;

revoke execute on all functions in schema ops from public, anon, authenticated, service_role;
grant execute on function ops.member_role(uuid), ops.is_member(uuid), ops.role_can_operate(ops.member_role, ops.stage),
  ops.can_operate(uuid, ops.stage), ops.can_read_run(bigint),
  ops.queue_run(uuid, text, jsonb, text, uuid, integer), ops.cancel_run(bigint),
  ops.request_approval(uuid, text, jsonb, text), ops.decide_approval(uuid, boolean)
  to authenticated, service_role;
grant execute on function ops.claim_run(text, integer, text[]), ops.heartbeat_run(bigint, text, integer),
  ops.append_run_logs(bigint, text, jsonb), ops.finish_run(bigint, text, ops.run_status, text, jsonb, jsonb),
  ops.finish_and_claim(bigint, text, ops.run_status, text, jsonb, jsonb, integer, text[]),
  ops.release_run(bigint, text, text), ops.recover_expired_runs(), ops.register_run_kinds(jsonb), ops.notify_waiting(uuid)
  to service_role;
