"""Streaming a run to its owner's clients over the WebSocket API (docs/streaming.md)."""
