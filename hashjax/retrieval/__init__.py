"""Retrieval engine: bit-packed codes, Hamming distances in XLA, retrieval metrics."""
