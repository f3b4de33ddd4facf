"""hashdemo: interactive demo of deep-hashing image retrieval (hierarchical CAM hashing, DCOH)."""
