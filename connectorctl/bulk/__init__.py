"""Bulk sending from a recipients file, resumable through a batch journal in SQLite."""
