"""``python -m rendezvous`` is the ``rendezvous`` command."""

from rendezvous.cli import main

main()
