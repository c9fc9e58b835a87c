"""``python -m rlcf …`` runs the ``rlcf`` command (useful where the console script is not on PATH)."""

from rlcf.cli import main

raise SystemExit(main())
