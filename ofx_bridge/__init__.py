"""gsrender.ofx_bridge."""
