"""Spectral clustering in jnp: jittable, so a per-batch graph can be clustered inside the train step."""

from hashjax.spectral.clustering import ASSIGN_LABELS
from hashjax.spectral.clustering import EIGEN_SOLVERS
from hashjax.spectral.clustering import kmeans
from hashjax.spectral.clustering import rbf_affinity
from hashjax.spectral.clustering import spectral_clustering
from hashjax.spectral.clustering import spectral_clustering_affinity
from hashjax.spectral.clustering import spectral_embedding
from hashjax.spectral.discretize import discretize
from hashjax.spectral.discretize import discretize_from_row

__all__ = [
  'ASSIGN_LABELS',
  'EIGEN_SOLVERS',
  'discretize',
  'discretize_from_row',
  'kmeans',
  'rbf_affinity',
  'spectral_clustering',
  'spectral_clustering_affinity',
  'spectral_embedding',
]
