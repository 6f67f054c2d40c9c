"""``python -m sansws``: the command-line client and echo server (see :mod:`sansws.cli`)."""

from .cli import run

if __name__ == "__main__":
    run()
