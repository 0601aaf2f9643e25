"""The plugin's configs: yacs `.yaml` files (`_BASE_` chains) and LazyConfig `.py` files, found by name with
`yolo_mask_plugin.d2.config.get_config_file`. A package so an editable install maps it like `adapters/`."""
