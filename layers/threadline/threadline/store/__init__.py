"""Storage: the single DynamoDB table, its conversions, cursors and idempotency records."""
