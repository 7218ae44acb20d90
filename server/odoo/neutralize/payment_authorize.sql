-- Odoo's payment_authorize/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET authorize_login = NULL, authorize_transaction_key = NULL, authorize_signature_key = NULL, authorize_client_key = NULL;
