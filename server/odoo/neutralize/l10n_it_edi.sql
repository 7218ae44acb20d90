UPDATE l10n_it_edi_config SET l10n_it_edi_register = false;
