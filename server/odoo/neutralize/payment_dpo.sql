-- Odoo's payment_dpo/data/neutralize.sql (19.0): the provider's credentials cleared.
UPDATE payment_provider SET dpo_company_token = NULL, dpo_service_ref = NULL;
