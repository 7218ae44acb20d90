-- Odoo's payment_paypal/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared; one statement per column,
-- as the columns differ between versions (a column this version lacks is skipped, not the rest).
UPDATE payment_provider SET paypal_email_account = NULL;
UPDATE payment_provider SET paypal_pdt_token = NULL;
UPDATE payment_provider SET paypal_client_id = NULL;
UPDATE payment_provider SET paypal_client_secret = NULL;
