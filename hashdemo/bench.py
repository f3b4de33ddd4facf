"""`python -m hashdemo.bench`: a thin entry point for hashdemo.cli.bench."""

if __name__ == "__main__":
    import sys

    from hashdemo.cli.bench import main

    sys.exit(main())
