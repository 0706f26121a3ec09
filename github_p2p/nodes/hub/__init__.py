"""The bootstrap node ("hub"): a blind store of sealed entries and fill-lease coalescing."""
