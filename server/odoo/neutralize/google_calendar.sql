UPDATE res_users_settings SET google_calendar_rtoken = NULL, google_calendar_token = NULL, google_calendar_token_validity = NULL, google_calendar_sync_token = NULL;
