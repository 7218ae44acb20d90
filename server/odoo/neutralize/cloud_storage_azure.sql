DELETE FROM ir_config_parameter WHERE key LIKE 'cloud_storage_azure.%';
