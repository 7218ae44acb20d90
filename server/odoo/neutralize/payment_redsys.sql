-- Odoo's payment_redsys/data/neutralize.sql (19.0): the provider's credentials cleared.
UPDATE payment_provider SET redsys_merchant_code = NULL, redsys_merchant_terminal = NULL, redsys_secret_key = NULL;
