"""The layered cache and its stores: the local disk store, the fleet interface and its sealing
layer, the upstream HTTP edge, and the synchronous driver behind ``GitHubClient``."""
