"""`python -m gsrender.cli ...` runs the `gsrender` command."""

import sys

from gsrender.cli import main

sys.exit(main())
