"""Settings, database engine, security primitives and column types."""
