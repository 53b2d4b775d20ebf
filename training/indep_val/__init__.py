"""Independent ground-truth validation: path-traced green/blue-screen plates (Mitsuba 3).

Not the training generator: 3D scenes (hair and fur curves, branches and leaves, nets and
lace, thin glass, capsule people) lit in a studio whose lit screen spills onto the subject,
rendered with exact alpha and the spill-free foreground (see render.py for how). Render a
set with ``python -m gsrender.cli.indep_val --out runs/indep_val``; score keyers on it
with ``gsrender evaluate --data indep:runs/indep_val``. Reading a set needs no renderer.
"""

from .dataset import IndepValError, load_indep_val

__all__ = ["IndepValError", "load_indep_val"]
