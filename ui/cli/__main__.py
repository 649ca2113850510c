"""`python -m ui.cli`: the `rag` command."""

import sys

from ui.cli import main

sys.exit(main())
