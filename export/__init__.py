"""gsrender.export."""
