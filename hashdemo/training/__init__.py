"""Training: one loop for every model, DCOH's operator phase."""
