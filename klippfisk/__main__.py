"""`python -m klippfisk`: the same command line as the `klippfisk` script."""

import sys

from klippfisk.adapters.cli import main

if __name__ == "__main__":
    sys.exit(main())
