"""The world model's trainer (``world_model``, ``wm_config``, ``data``, ``diagnostics``) and the
infrastructure every trainer shares (``interrupt``, ``distributed``, ``config_checks``)."""
