"""The local console (`make serve`; local only, never deployed)."""
