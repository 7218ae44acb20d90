-- Odoo's payment_aps/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET aps_merchant_identifier = NULL, aps_access_code = NULL, aps_sha_request = NULL, aps_sha_response = NULL;
