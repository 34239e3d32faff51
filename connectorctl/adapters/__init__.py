"""Vendor adapters: a shared base that orchestrates, one module per vendor that translates."""
