"""`python -m archgraph ...` is the `archgraph` command."""

from archgraph.cli import main

raise SystemExit(main())
