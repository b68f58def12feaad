"""``python -m labkit``: the command line (see :mod:`labkit.cli`)."""

from .cli import main

raise SystemExit(main())
