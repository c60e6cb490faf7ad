"""Runs: the state machine's steps and state, run records, starting, waiting, counting."""
