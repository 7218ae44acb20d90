-- Builds with tests (the `build` run kind): a fresh database with the repository's modules installed and
-- their tests run, queued by a push to a development branch and, when the project opts in, to a staging
-- branch. Builds are for staging and development: production is never built on (its server and runtime
-- are not a test bench), whoever queues it.

alter table ops.projects
  -- A push to a staging branch also queues a build (development branches always do).
  add column build_staging boolean not null default false;
grant update (build_staging) on ops.projects to authenticated;

-- Known before any worker started, so a webhook can queue one (workers update the description).
insert into ops.run_kinds (kind, description)
values ('build', 'Build a revision: fetch with submodules, install requirements, a fresh database with the repository''s modules and their tests')
on conflict (kind) do nothing;

create function ops.runs_build_stage() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.kind = 'build' and exists (select 1 from ops.environments e where e.id = new.environment_id and e.stage = 'production') then
    raise exception 'builds run on staging and development environments, not production'
      using errcode = '42501', hint = 'Queue the build on a development environment of the branch (or a staging one).';
  end if;
  return new;
end
$$;
revoke execute on function ops.runs_build_stage() from public, anon, authenticated, service_role;
create trigger runs_build_stage before insert on ops.runs
  for each row execute function ops.runs_build_stage();
