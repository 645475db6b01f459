"""The HTTP and WebSocket surface of DuraChat."""
