UPDATE delivery_carrier SET prod_environment = false;
