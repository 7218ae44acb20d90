-- Odoo's payment_nuvei/data/neutralize.sql (19.0): the provider's credentials cleared.
UPDATE payment_provider SET nuvei_merchant_identifier = NULL, nuvei_site_identifier = NULL, nuvei_secret_key = NULL;
