"""The Faust app every worker runs (the delivery policy) and its flow-safe consumer."""
