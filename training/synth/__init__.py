"""Procedural green-screen plates with exact ground truth (see generator.py)."""

from .generator import Plate, generate_plate
from .sequence import generate_sequence

__all__ = ["Plate", "generate_plate", "generate_sequence"]
