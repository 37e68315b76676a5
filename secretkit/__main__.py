"""``python -m secretkit`` runs the command line."""

import sys

from secretkit.cli import main

sys.exit(main())
