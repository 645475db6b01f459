"""DuraChat: a self-hosted AI chat server whose replies are durable."""

__version__ = "0.1.0"
