"""gsrender.training.synth."""
