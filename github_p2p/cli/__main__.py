"""``python -m github_p2p.cli``: the same as the ``github-p2p`` console script."""

import sys

from github_p2p.cli.main import main

sys.exit(main())
