"""`python -m atlas` runs the command line."""

from atlas.cli import main

raise SystemExit(main())
