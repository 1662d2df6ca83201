"""``python -m tf1norm``: the ``tf1norm`` command line."""

import sys

from tf1norm.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
