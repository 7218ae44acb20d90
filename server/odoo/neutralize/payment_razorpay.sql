-- Odoo's payment_razorpay/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared; one statement per column,
-- as the columns differ between versions (a column this version lacks is skipped, not the rest).
UPDATE payment_provider SET razorpay_key_id = NULL;
UPDATE payment_provider SET razorpay_key_secret = NULL;
UPDATE payment_provider SET razorpay_webhook_secret = NULL;
UPDATE payment_provider SET razorpay_account_id = NULL;
UPDATE payment_provider SET razorpay_refresh_token = NULL;
UPDATE payment_provider SET razorpay_public_token = NULL;
UPDATE payment_provider SET razorpay_access_token = NULL;
UPDATE payment_provider SET razorpay_access_token_expiry = NULL;
