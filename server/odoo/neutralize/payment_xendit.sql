-- Odoo's payment_xendit/data/neutralize.sql (19.0): the provider's credentials cleared.
UPDATE payment_provider SET xendit_secret_key = 'dummysecret', xendit_webhook_token = 'dummytoken';
