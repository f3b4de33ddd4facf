"""`python -m hashdemo.evaluate`: a thin entry point for hashdemo.cli.evaluate."""

if __name__ == "__main__":
    import sys

    from hashdemo.cli.evaluate import main

    sys.exit(main())
