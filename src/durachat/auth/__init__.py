"""Identity: password hashes, API tokens, and who a request belongs to."""
