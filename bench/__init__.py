"""Benchmarks of the hub; run them with `make bench` (results in bench/RESULTS.md).

A package so that the benchmark server can import its app factory as `bench.tokens:bench_app`.
"""
