"""Benchmark harness for djust_dist: ``python -m benchmarks [--quick]``.

One run measures, against one Redis server, raw PING, ``consume`` and the
``limits`` library's strategies, one call at a time and with 50 concurrent
tasks. It also measures full-stack events per second through
``LiveViewConsumer``, Redis calls per denied event during a flood, and Redis
memory per active client IP. It prints Markdown tables with medians over
repeated runs, the machine and the versions.
"""
