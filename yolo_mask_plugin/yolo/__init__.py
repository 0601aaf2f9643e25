"""What both shells need of Ultralytics (the bridge); `compat` holds the supported releases and every Ultralytics internal
the plugin touches."""
