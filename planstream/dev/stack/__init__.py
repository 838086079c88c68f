"""The local stack: Kafka, PostgreSQL, S3, the model server and Prometheus on loopback."""
