"""The field station: a durable local outbox of everything an officer records, and its sync loop."""
