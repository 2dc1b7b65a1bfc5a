"""``python -m mlpx``: the same program as the ``mlpx`` command."""

from mlpx.cli import main

raise SystemExit(main())
