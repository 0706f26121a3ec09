"""The runner peer daemon: a libp2p host linked to the hubs, serving the local endpoint."""
