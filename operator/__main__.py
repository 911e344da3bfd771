"""``python -m stigmer_operator``: the same as the ``stigmer-operator`` command."""

import sys

from stigmer_operator.cli import main

sys.exit(main())
