"""Files: upload policy, presigned uploads, ingest, settling, the sweep, generated files."""
