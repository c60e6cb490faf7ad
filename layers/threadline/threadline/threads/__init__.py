"""Threads: their records, get-or-create, the run lock, and the API's thread operations."""
