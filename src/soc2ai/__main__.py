"""``python -m soc2ai``."""

from soc2ai.cli import main

main()
