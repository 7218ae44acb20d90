-- Odoo's payment_sips/data/neutralize.sql (17.0): the provider's credentials cleared.
UPDATE payment_provider SET sips_merchant_id = NULL, sips_secret = NULL;
