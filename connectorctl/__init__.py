"""connectorctl: one gateway from an ERP to every outside vendor.

Import from here; everything else is an implementation detail.  Names are
loaded lazily so that ``import connectorctl`` (and the CLI's ``--help``) stay
fast.
"""

from __future__ import annotations

from connectorctl.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "TrackingStatus": "connectorctl.domain.shipping",
    "TrackingEvent": "connectorctl.domain.shipping",
    "Tracking": "connectorctl.domain.shipping",
    "Shipment": "connectorctl.domain.shipping",
    "Rate": "connectorctl.domain.shipping",
    "Parcel": "connectorctl.domain.shipping",
    "LabelFormat": "connectorctl.domain.shipping",
    "Label": "connectorctl.domain.shipping",
    "AddressVerification": "connectorctl.domain.shipping",
    "Address": "connectorctl.domain.shipping",
    "PaymentStatus": "connectorctl.domain.payments",
    "PaymentRequest": "connectorctl.domain.payments",
    "Payment": "connectorctl.domain.payments",
    "OutcomeUncertainError": "connectorctl.errors",
    "Money": "connectorctl.domain.money",
    "IdempotencyConflictError": "connectorctl.adapters.payment.base",
    "Attachment": "connectorctl.domain.messages",
    "AuthMethod": "connectorctl.domain.values",
    "AuthenticationError": "connectorctl.errors",
    "CircuitBreakerState": "connectorctl.domain.values",
    "CircuitOpenError": "connectorctl.errors",
    "CircuitState": "connectorctl.domain.values",
    "ConfigurationError": "connectorctl.errors",
    "ConnectionFailedError": "connectorctl.errors",
    "Connector": "connectorctl.gateway",
    "ConnectorError": "connectorctl.errors",
    "ConnectorctlError": "connectorctl.errors",
    "CredentialNotFoundError": "connectorctl.errors",
    "CredentialProvider": "connectorctl.domain.roles",
    "CredentialRefreshError": "connectorctl.errors",
    "Credentials": "connectorctl.domain.values",
    "DeliveryStatus": "connectorctl.domain.messages",
    "EmailMessage": "connectorctl.domain.messages",
    "EmailService": "connectorctl.domain.roles",
    "Endpoint": "connectorctl.domain.values",
    "HttpMethod": "connectorctl.domain.values",
    "IntegrationLog": "connectorctl.domain.values",
    "IntegrationLogger": "connectorctl.domain.roles",
    "IntegrationStatus": "connectorctl.domain.values",
    "InvalidInputError": "connectorctl.errors",
    "PaymentDeclinedError": "connectorctl.errors",
    "PaymentGateway": "connectorctl.domain.roles",
    "RateLimitConfig": "connectorctl.domain.values",
    "RateLimitedError": "connectorctl.errors",
    "RemoteFileNotFoundError": "connectorctl.errors",
    "RetryPolicy": "connectorctl.domain.values",
    "SendResult": "connectorctl.domain.messages",
    "Settings": "connectorctl.config",
    "ShippingProvider": "connectorctl.domain.roles",
    "CloudStorage": "connectorctl.domain.roles",
    "ObjectPage": "connectorctl.domain.storage",
    "PresignedUrl": "connectorctl.domain.storage",
    "StoredObject": "connectorctl.domain.storage",
    "SmsMessage": "connectorctl.domain.messages",
    "SmsService": "connectorctl.domain.roles",
    "SuppressedError": "connectorctl.errors",
    "UnsupportedFeatureError": "connectorctl.errors",
    "ValidationError": "connectorctl.errors",
    "WebhookVerifier": "connectorctl.domain.roles",
    "load_settings": "connectorctl.config",
    "load_shipment": "connectorctl.shipping.loader",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
