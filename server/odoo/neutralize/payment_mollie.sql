-- Odoo's payment_mollie/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET mollie_api_key = NULL;
