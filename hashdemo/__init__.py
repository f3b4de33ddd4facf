"""hashdemo: interactive demo of deep-hashing image retrieval (hierarchical CAM hashing, DCOH)."""

from hashdemo.runtime import configure_malloc

configure_malloc()
