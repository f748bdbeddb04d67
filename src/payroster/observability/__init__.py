"""What operators watch: request ids, Prometheus metrics and the log format (docs/operations.md)."""
