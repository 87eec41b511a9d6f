"""`python -m api.cli`: the same as `mpt`."""

from api.cli.main import main

main()
