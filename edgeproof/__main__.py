"""`python -m edgeproof` is the `edgeproof` command."""

import sys

from edgeproof.cli.main import main

if __name__ == "__main__":  # guarded: spawned benchmark workers re-import this module
    sys.exit(main())
