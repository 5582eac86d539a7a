"""``python -m edigw.sandbox``: run the Ecolix sandbox (the tests start it this way)."""

from edigw.sandbox.server import main

raise SystemExit(main())
