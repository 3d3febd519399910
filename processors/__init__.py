"""Pure processing: plain values in, plain values out. No Kafka, no Redis."""
