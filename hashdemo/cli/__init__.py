"""Command-line entry points (evaluate, query, bench). Nothing in the package imports them."""
