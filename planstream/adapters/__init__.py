"""The only code that does I/O: PostgreSQL, Kafka and Faust, S3, the model's HTTP API, Pillow,
and the HTTP ingress. ``composition`` wires them into the services.
"""
