-- Odoo's base/data/neutralize.sql (17.0 to 19.0): mail servers off plus a dummy active one, so no fallback
-- server from the command line can send; crons off except autovacuum; webhooks off; the flag.
UPDATE ir_mail_server SET active = false;
INSERT INTO ir_mail_server (name, smtp_port, smtp_host, smtp_encryption, active, smtp_authentication)
VALUES ('neutralization - disable emails', 1025, 'invalid', 'none', true, 'login');
UPDATE ir_cron SET active = false
WHERE id NOT IN (SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job');
UPDATE ir_act_server SET webhook_url = 'neutralization - disable webhook' WHERE state = 'webhook';
INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', 'true')
ON CONFLICT (key) DO UPDATE SET value = 'true';
