"""The I/O edge: faust agents, Kafka topics, Redis. Everything here calls pure functions in processors/."""
