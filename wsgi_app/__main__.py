"""Run the command line: ``python -m wsgi_app``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
