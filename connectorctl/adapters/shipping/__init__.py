"""Shipping vendor adapters: one module per vendor, each only translating."""
