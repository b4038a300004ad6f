"""Data: sources (tfds / IDX files / scikit-learn digits / the published formats in formats/),
retrieval protocols, batching, augmentation.

This package is the only place that talks to grain and tensorflow-datasets.
"""
