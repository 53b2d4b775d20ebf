"""gsrender.training."""
