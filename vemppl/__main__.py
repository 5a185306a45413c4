"""``python -m vemppl ...``: the ``vemppl`` command (``vemppl/cli.py``), for environments
where the console script is not on ``PATH``."""

import sys

from .cli import main

sys.exit(main())
