-- Odoo's payment_flutterwave/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET flutterwave_public_key = NULL, flutterwave_secret_key = NULL, flutterwave_webhook_secret = NULL;
