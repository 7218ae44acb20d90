-- Odoo's payment_buckaroo/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET buckaroo_website_key = NULL, buckaroo_secret_key = NULL;
