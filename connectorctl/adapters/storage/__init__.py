"""Object storage: the channel base plus one module per store (local folder, S3-compatible)."""
