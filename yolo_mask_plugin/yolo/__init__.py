"""What both shells need of Ultralytics (the bridge). `compat`: the supported Ultralytics releases, and every
Ultralytics internal the plugin touches."""
