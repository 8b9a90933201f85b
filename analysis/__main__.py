"""``python -m analysis``: see :mod:`analysis.cli.commands`."""
import sys

from analysis.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
