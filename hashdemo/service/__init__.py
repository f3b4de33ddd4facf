"""The search service beneath the web app and the command line: one call per user action."""
