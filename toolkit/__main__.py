"""`python -m toolkit` is `edgekit`."""

import sys

from toolkit.cli.main import main

if __name__ == "__main__":  # guarded: spawned benchmark workers re-import this module
    sys.exit(main())
