"""Payment vendor adapters: the channel base orchestrates, one module per vendor translates."""
