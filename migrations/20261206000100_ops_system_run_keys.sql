-- Idempotency keys of the shapes the server's own queueing uses are the server's: the daily backup
-- ('daily-backup:…'), retention ('retention:…'), the weekly verify sample ('verify-newest:…',
-- 'verify-sample:…', which the verify run trusts to mean "picked by the scheduler") and pushes
-- ('deploy:…', 'build:…', 'clone:…', 'destroy:…'). A member who could insert a run under such a key first
-- would take its place: the scheduler's or the webhook's queue_run would find the member's run (or a
-- conflict) instead of queueing its own, so a daily backup or a push's deploy would not happen.
-- Checked on insert, for every caller but the service role (queue_run is security definer; the claims are
-- still the caller's).
create function ops.runs_system_key_check() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.idempotency_key ~ '^(daily-backup|retention|verify-newest|verify-sample|deploy|build|clone|destroy):'
     and auth.role() is distinct from 'service_role' then
    raise exception 'the idempotency key "%" has the form of the server''s own keys (%:…)', new.idempotency_key, split_part(new.idempotency_key, ':', 1)
      using errcode = '22023', hint = 'Choose another key (a prefix of your own, such as ci-).';
  end if;
  return new;
end
$$;
create trigger runs_system_key before insert on ops.runs
  for each row when (new.idempotency_key is not null) execute function ops.runs_system_key_check();
