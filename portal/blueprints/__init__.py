"""Blueprints: small packages of a ``bp``, its routes and its forms."""
