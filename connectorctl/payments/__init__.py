"""Payments: the write-ahead payment service, the payments table, reconciliation and vendor events."""
