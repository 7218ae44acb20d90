-- Masking is a project policy (ARCHITECTURE.md, trust boundaries): the profile a project's clones use
-- is set by a project admin (projects_update is admin-only) and every change is written to the audit
-- log by the projects_audit trigger, old and new profile included. Null: OdooOps's default profile.
-- A clone run's own profile can only make it stricter (checked by the API and again by the worker).
alter table ops.projects
  add column mask_profile jsonb constraint projects_mask_profile_object check (jsonb_typeof(mask_profile) = 'object');

grant update (mask_profile) on ops.projects to authenticated;
