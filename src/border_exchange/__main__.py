"""``python -m border_exchange`` runs the command line."""

from border_exchange.cli.main import main

raise SystemExit(main())
