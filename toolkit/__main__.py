"""`python -m toolkit` is `edgekit`."""

import sys

from toolkit.cli.main import main

sys.exit(main())
