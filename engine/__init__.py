"""gsrender.engine."""
