-- GitHub deliveries are also known by what they say, not only by X-GitHub-Delivery: that header is not
-- signed, so a signed payload replayed under new ids would otherwise act again each time (a production
-- deploy approval per replay). dedupe_key is a SHA-256 of the event's identity (server/github/webhook.ts,
-- dedupeKey); unique, so two copies arriving at once insert one row (the other's insert ... on conflict
-- do nothing waits for it and finds it). Null for events that act on nothing (ping, unknown events) and
-- for deliveries recorded before this migration (their payloads were not kept).
alter table ops.webhook_deliveries
  add column dedupe_key text constraint webhook_deliveries_dedupe_key_format check (dedupe_key ~ '^[0-9a-f]{64}$');
create unique index webhook_deliveries_dedupe_key on ops.webhook_deliveries (dedupe_key);
-- The table-level grant to service_role (select, insert, update) covers the new column; RLS stays on.
