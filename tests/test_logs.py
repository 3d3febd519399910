"""Log set-up: the Kafka client's repeated warnings are thinned, nothing else is."""

import logging

from clinstream.logs import KAFKA_CLIENT_LOGGERS, RepeatedWarnings, configure


def _record(msg: str, *args, level: int = logging.ERROR, name: str = "aiokafka") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_warning_passes_once_per_window_and_then_counts_the_dropped():
    now = [0.0]
    f = RepeatedWarnings(every_s=5, clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    passed = [f.filter(_record(template, 1, f"attempt {i}")) for i in range(100)]
    assert passed == [True] + [False] * 99
    now[0] = 5.0
    later = _record(template, 1, "attempt 100")
    assert f.filter(later)
    assert later.getMessage() == "Unable connect to node with id 1: attempt 100 [and 99 more like it in the last 5 s]"
    assert f.filter(_record("Unable to update metadata from %s", [1]))  # another template has its own window
    assert f.filter(_record(template, 1, "x", name="aiokafka.consumer.fetcher"))  # and so has another logger


def test_debug_and_info_lines_are_never_thinned():
    f = RepeatedWarnings(every_s=5, clock=lambda: 0.0)
    assert all(f.filter(_record("Sending metadata request %s", i, level=logging.DEBUG)) for i in range(10))
    assert all(f.filter(_record("Discovered coordinator %s", i, level=logging.INFO)) for i in range(10))


def test_configure_installs_the_filter_once_on_each_kafka_client_logger():
    configure("info")
    configure("info")
    for name in KAFKA_CLIENT_LOGGERS:
        assert sum(isinstance(f, RepeatedWarnings) for f in logging.getLogger(name).filters) == 1
