-- Odoo's mail/data/neutralize.sql: templates' mail servers unset, incoming mail servers off, web push
-- keys and queues gone. The web push tables were renamed in 18.0: mail_notification_web_push and
-- mail_partner_device (17.0) are mail_push and mail_push_device (19.0); each version skips the other's.
UPDATE mail_template SET mail_server_id = NULL;
UPDATE fetchmail_server SET active = false;
DELETE FROM ir_config_parameter WHERE key IN ('mail.web_push_vapid_private_key', 'mail.web_push_vapid_public_key', 'mail.sfu_server_key');
TRUNCATE mail_notification_web_push;
DELETE FROM mail_partner_device;
TRUNCATE mail_push;
DELETE FROM mail_push_device;
