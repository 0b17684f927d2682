"""`python -m lsdb.cli`: the `lsdb` command."""

from lsdb.cli.app import main

main()
