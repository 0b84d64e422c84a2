"""Benchmarks behind the figures quoted in the docs; ``python -m benchmarks`` (``make bench``) runs them.

Each benchmark is a module of this package that defines ``BENCHMARK``, a :class:`benchmarks._harness.Benchmark`;
adding one means writing the module and listing it in ``benchmarks.__main__.MODULES``. Results are printed as
tables and merged into ``bench-results.json`` at the repository root, one flat key per figure, with a chart of
the latency distributions in ``bench-results.png``. ``--quick`` is a smoke run with tiny samples (written to
``bench-results-quick.*``); ``python -m benchmarks.profile_call`` profiles one guarded call, client and broker.

Benchmarks only ever talk to servers they start themselves on 127.0.0.1.
"""
