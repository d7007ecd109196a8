"""Entry script of the bundled app: the same `studio` command as the console script (GUI without arguments)."""

import sys

from studio.app import main

if __name__ == "__main__":
    sys.exit(main())
