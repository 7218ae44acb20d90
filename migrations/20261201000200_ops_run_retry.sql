-- Re-running a failed run (GitHub Actions' "Re-run"): the same run is queued again as its next attempt,
-- with the same kind, environment and parameters, and the approval it was queued with while that
-- approval is valid. The approval belongs to the run, not to an attempt: requeues after a lost lease
-- never asked for it again (ops.runs_require_approval is an insert trigger), and a retry does not
-- either, but a retry cannot change anything the approval was given for: it takes no parameters.

-- The attempts each try of a run may use (max_attempts as queued); a retry adds that many again.
alter table ops.runs add column attempt_budget integer
  constraint runs_attempt_budget_range check (attempt_budget between 1 and 20);
-- Retries raise max_attempts past what a queue request may ask for (1 to 20, checked by the API and
-- queue_run's callers); 100 attempts bound a run's life.
alter table ops.runs drop constraint runs_max_attempts_range,
  add constraint runs_max_attempts_range check (max_attempts between 1 and 100);

-- Who may retry: whoever may queue runs on the run's environment (the service too). Only a failed run:
-- a succeeded one is done, a cancelled one was stopped by a member on purpose (queue it anew), a queued
-- or running one has attempts left.
create function ops.retry_run(p_run bigint) returns ops.runs
language plpgsql security definer set search_path = '' as $$
declare
  v_run ops.runs;
  v_stage ops.stage;
  v_needs boolean;
  v_approval ops.approvals;
  v_budget integer;
  v_who text := coalesce(auth.jwt() ->> 'email', auth.uid()::text, auth.role(), session_user::text);
begin
  select * into v_run from ops.runs r where r.id = p_run for update;
  if not found or (auth.role() is distinct from 'service_role' and not ops.is_member(v_run.project_id)) then
    raise exception 'run % not found', p_run using errcode = 'P0002';
  end if;
  select e.stage, p.production_needs_approval into v_stage, v_needs
  from ops.environments e join ops.projects p on p.id = e.project_id where e.id = v_run.environment_id;
  if auth.role() is distinct from 'service_role' and not ops.can_operate(v_run.project_id, v_stage) then
    raise exception 'your role cannot retry runs on % environments', v_stage using errcode = '42501',
      hint = case v_stage when 'production' then 'Ask a project admin.' else 'Ask a project admin for the tester or admin role.' end;
  end if;
  if v_run.status <> 'failed' then
    raise exception 'run % is %: only a failed run can be retried', p_run, v_run.status using errcode = '55000',
      hint = case v_run.status when 'succeeded' then 'It is done; queue a new run to do it again.'
                               when 'cancelled' then 'A cancelled run stays cancelled; queue a new run.'
                               else 'It has not failed; wait for it (odooops run wait).' end;
  end if;
  if v_run.approval_id is not null then
    select * into v_approval from ops.approvals a where a.id = v_run.approval_id;
    if v_approval.status is distinct from 'approved' or v_approval.used_by_run_id is distinct from v_run.id then
      raise exception 'approval % is not an approval of run %', v_run.approval_id, p_run using errcode = '42501';
    end if;
    if v_approval.decided_at < now() - interval '24 hours' then
      raise exception 'the approval of run % expired at % (approvals are valid for 24 hours)', p_run,
        to_char((v_approval.decided_at + interval '24 hours') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        using errcode = '42501', hint = 'Request a new approval (odooops approval request), have another admin approve it, and queue a new run with it.';
    end if;
  elsif v_stage = 'production' and (v_run.kind = 'restore' or (v_run.kind = 'deploy' and v_needs)) then
    -- Queued before the project asked for approvals of production deploys: it needs one now.
    raise exception 'a % into production needs an approval from another member, and run % has none', v_run.kind, p_run
      using errcode = '42501', hint = 'Request one (odooops approval request), have a second admin approve it, then queue a new run with --approval.';
  end if;
  v_budget := coalesce(v_run.attempt_budget, v_run.max_attempts);
  if v_run.attempts + v_budget > 100 then
    raise exception 'run % has used % attempts; a run gets at most 100', p_run, v_run.attempts using errcode = '55000',
      hint = 'Queue a new run.';
  end if;
  -- The log line first, so the state change's broadcast already counts it in last_seq.
  perform ops.log_system(p_run, format('retried by %s: queued again for attempt %s of %s%s', v_who, v_run.attempts + 1,
    v_run.attempts + v_budget, case when v_approval.id is null then '' else format(' with approval %s (given by another member, valid until %s)',
      v_approval.id, to_char((v_approval.decided_at + interval '24 hours') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) end));
  update ops.runs set status = 'queued', attempt_budget = v_budget, max_attempts = v_run.attempts + v_budget,
    error = null, result = null, finished_at = null, cancel_requested_at = null, lease_owner = null, lease_expires_at = null
  where id = p_run
  returning * into v_run;
  perform ops.audit(v_run.project_id, 'runs.retried', 'runs:' || p_run,
    jsonb_strip_nulls(jsonb_build_object('attempt', v_run.attempts + 1, 'approval_id', v_run.approval_id)));
  return v_run;
end
$$;

revoke execute on function ops.retry_run(bigint) from public, anon, authenticated, service_role;
grant execute on function ops.retry_run(bigint) to authenticated, service_role;
