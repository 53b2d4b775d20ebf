"""Other keyers scored beside gsrender's own by `gsrender evaluate` (peers, not part of the engine)."""
