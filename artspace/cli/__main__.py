"""``python -m artspace.cli`` runs the ``artspace`` command."""

from . import main

main()
