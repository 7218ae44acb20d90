UPDATE website SET domain = NULL;
UPDATE ir_ui_view SET active = true WHERE key = 'website.neutralize_ribbon';
UPDATE website SET cdn_activated = false;
UPDATE website SET robots_txt = E'User-agent: *\nDisallow: /';
