-- Odoo's payment_worldline/data/neutralize.sql (19.0): the provider's credentials cleared.
UPDATE payment_provider SET worldline_pspid = NULL, worldline_api_key = NULL, worldline_api_secret = NULL, worldline_webhook_key = NULL, worldline_webhook_secret = NULL;
