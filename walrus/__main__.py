"""``python -m walrus``: the same as the ``walrus`` command."""

import sys

from walrus.cli import main

sys.exit(main())
