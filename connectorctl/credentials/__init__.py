"""Credentials: keyring master key, encrypted store, auth methods, refresh."""
