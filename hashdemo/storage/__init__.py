"""Storage: atomic files, cached arrays, the disk budget."""
