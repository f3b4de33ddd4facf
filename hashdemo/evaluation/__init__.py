"""The evaluation protocols as a library (SPEC section 3): each returns a plain dict of numbers.

Used by `python -m hashdemo evaluate` and read back by the app's Benchmarks; nothing here prints.
"""
