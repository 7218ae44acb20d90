-- Odoo's payment_adyen/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET adyen_merchant_account = NULL, adyen_api_key = NULL, adyen_hmac_key = NULL;
