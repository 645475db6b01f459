"""The `durachat` command line."""
