"""Adapters: the only modules that talk to Kafka, PostgreSQL, S3 and the model."""
