"""``python -m minimalt``: the ``minimalt`` command line (see ``minimalt.cli``)."""

import sys

from .cli import main

sys.exit(main())
