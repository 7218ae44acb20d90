UPDATE auth_oauth_provider SET enabled = false
WHERE id NOT IN (SELECT jsonb_array_elements_text(value::jsonb)::integer FROM ir_config_parameter WHERE key = 'auth_oauth.dont_neutralize_providers');
