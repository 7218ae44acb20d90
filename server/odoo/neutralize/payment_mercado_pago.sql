-- Odoo's payment_mercado_pago/data/neutralize.sql (17.0, 19.0): the provider's credentials cleared.
UPDATE payment_provider SET mercado_pago_access_token = NULL;
