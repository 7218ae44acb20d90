UPDATE l10n_es_edi_sii_config SET l10n_es_sii_test_env = true;
