"""Data: the dataset interface, the outfits, imported folders, image decoding, label-set algebra."""
