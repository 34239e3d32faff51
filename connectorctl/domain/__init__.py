"""Vendor-agnostic domain: value objects, enums and the role interfaces."""
