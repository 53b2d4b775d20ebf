"""The `gsrender` command: the render and every other verb, one module each.

    render.py (the default verb)  info.py  doctor.py  job/  build_engine.py  serve.py
    train.py  evaluate.py  export.py       (verbs.py dispatches; render_options.py and
                                             progress.py serve the render and job)
    indep_val.py                           (python -m gsrender.cli.indep_val: renders the
                                             independent validation set evaluate scores on)

The top of the package tree and the only place that parses command lines: it may import any
gsrender package, and nothing imports it.
SIGTERM is handled before anything heavy is imported, so a signal during start-up (numpy,
OpenImageIO, ONNX Runtime loading) ends the command with exit 130 and one line.
"""

import sys

from gsrender.engine.command import install_startup_signals, signal_received

try:
    install_startup_signals()  # the first handler is live while the second is set: inside the try
    from .verbs import VERBS, main
except BaseException:  # a signal inside an import can surface as any exception
    if not signal_received():
        raise
    print("gsrender: interrupted during start-up; nothing was rendered", file=sys.stderr)
    raise SystemExit(130) from None

__all__ = ["VERBS", "main"]
