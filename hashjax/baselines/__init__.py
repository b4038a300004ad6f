"""Shallow hashing baselines: no training loop, same evaluation."""
