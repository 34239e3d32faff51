"""Shipping: the service that buys each label once, the shipment records, the shipment file and tracking webhooks."""
