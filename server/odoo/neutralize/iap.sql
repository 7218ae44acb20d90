-- Odoo's iap/data/neutralize.sql (19.0; 17.0 has only the first statement, without the length
-- condition): tokens disabled, legacy tokens of before 17.0 (longer) replaced.
UPDATE iap_account SET account_token = REGEXP_REPLACE(account_token, '(\+.*)?$', '+disabled') WHERE LENGTH(account_token) <= 33;
UPDATE iap_account SET account_token = 'dummy_value+disabled' WHERE LENGTH(account_token) > 33 AND account_token NOT LIKE '%+disabled';
