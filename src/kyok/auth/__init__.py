"""Principals, credentials, roles (the HTTP-facing parts arrive with the API)."""
