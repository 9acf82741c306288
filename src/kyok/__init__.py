"""kyok — keep your own key: a self-hosted key management service."""

__version__ = "0.1.0"
