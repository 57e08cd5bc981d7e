"""Deskstream benchmark harness: raw PostgreSQL/broker limits, intake throughput and
end-to-end latency in the embedded and Kafka modes. Run with ``python -m bench``."""
