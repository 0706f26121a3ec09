"""The long-running nodes: the runner peer daemon, the bootstrap hub and the local HTTP
endpoint both of them serve."""
