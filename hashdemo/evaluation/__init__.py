"""The evaluation protocols (docs/methods.md, Evaluation protocol) as a library: each returns plain data.

Used by `python -m hashdemo evaluate` and read back by the app's Benchmarks; nothing here prints.
"""
