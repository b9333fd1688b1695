"""The pure numpy core: the crowd (truth), the counter (what the device reports), bins."""
