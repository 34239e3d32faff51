"""Email vendor adapters: one module per vendor over :mod:`.common`."""
