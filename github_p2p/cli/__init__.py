"""The ``github-p2p`` command line."""
