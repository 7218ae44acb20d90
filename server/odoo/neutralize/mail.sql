UPDATE mail_template SET mail_server_id = NULL;
UPDATE fetchmail_server SET active = false;
DELETE FROM ir_config_parameter WHERE key IN ('mail.web_push_vapid_private_key', 'mail.web_push_vapid_public_key');
TRUNCATE mail_push;
DELETE FROM mail_push_device;
