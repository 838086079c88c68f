"""The local stack: Kafka, PostgreSQL, S3 and the model server as processes on loopback."""
