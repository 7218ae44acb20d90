-- Odoo's website_sale_autocomplete/data/neutralize.sql (17.0; the module is gone in 19.0).
UPDATE website SET google_places_api_key = 'dummy';
