"""``python -m labkit``: the command line (see :mod:`labkit.cli`)."""

from labkit.cli import main

raise SystemExit(main())
