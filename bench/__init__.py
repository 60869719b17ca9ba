"""Benchmarks, run by hand (``python -m bench`` or ``make bench``), never by ``make test``.

Each ``bench/bench_*.py`` module has a ``main()`` that prints a table of figures measured in that
one run, with ratios against a baseline measured alongside, so the numbers mean something on any
machine.
"""
