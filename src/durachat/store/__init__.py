"""Durable storage: the `Store` protocol, its SQL implementation and group commit."""
