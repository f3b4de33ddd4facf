"""`python -m hashdemo.query`: a thin entry point for hashdemo.cli.query."""

if __name__ == "__main__":
    import sys

    from hashdemo.cli.query import main

    sys.exit(main())
