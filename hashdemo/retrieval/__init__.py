"""Retrieval: packed Hamming index, metrics, and the evaluation protocol shared by training and evaluation."""
