-- Odoo's payment_stripe/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET stripe_secret_key = NULL, stripe_publishable_key = NULL, stripe_webhook_secret = NULL;
