"""``python -m sansws``: the command-line client and echo server (see :mod:`sansws.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
