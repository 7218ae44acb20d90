-- The registry gains backup stores (local directories and S3-compatible object storage, issue 16) and alert
-- channels (webhooks and SMTP servers a project's alerts may use): the control plane's copy of it must be
-- able to hold their names, so the API can refuse a store or channel a project is not bound to.
alter table ops.infrastructure drop constraint infrastructure_kind;
alter table ops.infrastructure add constraint infrastructure_kind
  check (kind in ('database_server', 'filestore_root', 'runtime', 'repository', 'secret', 'backup_store', 'alert_channel'));
