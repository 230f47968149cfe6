"""``python -m tests.conformance``: see ``tests.conformance.runner``."""

import sys

from .runner import main

sys.exit(main())
