UPDATE account_edi_proxy_client_user SET edi_mode = CASE WHEN proxy_type IN ('l10n_it_edi', 'peppol', 'nemhandel', 'pdp') THEN 'demo' ELSE 'test' END
WHERE proxy_type NOT IN ('l10n_my_edi', 'l10n_gr_edi');
