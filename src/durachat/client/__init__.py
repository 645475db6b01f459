"""The Python client library of the DuraChat protocol."""
