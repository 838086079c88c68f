"""``python -m planstream.cli``: the same as the ``planstream`` command."""

import sys

from planstream.cli.main import main

sys.exit(main())
