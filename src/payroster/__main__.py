"""``python -m payroster`` runs the CLI."""

from payroster.cli import main

main()
