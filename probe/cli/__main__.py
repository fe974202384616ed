"""``python -m probe.cli ...`` is ``probe ...``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
