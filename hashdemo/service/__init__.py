"""The search service beneath the web app and the command line: one call per user action.

engine (Engine: search, compare, why, compose), answers (what they return), loading (checkpoints,
gallery codes, indexes, the data source), known_images (dataset images by pixel digest), presets.
"""
