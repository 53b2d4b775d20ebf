import sys

from .build_set import main

sys.exit(main())
