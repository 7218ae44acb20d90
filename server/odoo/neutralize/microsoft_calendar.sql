UPDATE res_users_settings SET microsoft_calendar_sync_token = NULL, microsoft_synchronization_stopped = true, microsoft_last_sync_date = NULL;
