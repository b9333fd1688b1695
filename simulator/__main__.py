"""``python -m simulator``: the same as ``p8815-sim``."""

import sys

from simulator.cli import main

sys.exit(main())
