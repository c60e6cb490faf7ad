"""Threadline's events: made from the table's changes, published to EventBridge."""
