"""`python -m lector …` is the `lector` command."""

import sys

from lector.cli import main

sys.exit(main())
