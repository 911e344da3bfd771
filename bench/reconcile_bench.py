"""End to end: how fast the operator turns Agents into Ready Agents, on a real control plane.

The entry script of the bench in ``bench/reconcile/`` (its package docstring
says what each phase measures). Usage::

    python -P bench/reconcile_bench.py --quick    # ~1 min; --help for the flags
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python -P` leaves the script's folder off sys.path; the bench's package lives there.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reconcile.cli import main

if __name__ == "__main__":
    sys.exit(main())
