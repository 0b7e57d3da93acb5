"""Command line of the local fleet: python -m localfleet <command>."""

import sys

from . import cli

sys.exit(cli.main(sys.argv[1:]))
