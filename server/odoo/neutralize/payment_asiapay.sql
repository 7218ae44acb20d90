-- Odoo's payment_asiapay/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET asiapay_merchant_id = NULL, asiapay_secure_hash_secret = NULL, asiapay_secure_hash_function = NULL;
