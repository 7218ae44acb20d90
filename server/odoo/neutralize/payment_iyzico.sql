-- Odoo's payment_iyzico/data/neutralize.sql (19.0): the provider's credentials cleared.
UPDATE payment_provider SET iyzico_key_id = NULL, iyzico_key_secret = NULL;
