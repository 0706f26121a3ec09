"""The network layer: libp2p hosts (:mod:`.host`, where every py-libp2p 0.8.1 workaround
lives), the ``/github-p2p/cache/1.0.0`` codec (:mod:`.wire`, :mod:`.messages`), a runner's link
to a hub (:mod:`.link`) and the routing over several hubs (:mod:`.router`).

What callers (the wire protocol, the hub and the peer daemon) must still do themselves:

* **Deadline every exchange** (``trio.fail_after``). Yamux resets a stream whose reader stays
  behind for 5 s without telling the reader, and a PSK mismatch or a wedged peer just hangs.
* **Length-prefix every message.** A peer killed mid-stream shows up as an orderly EOF
  (``StreamEOF``), not as a reset, and so does a stream the other side reset (a failed handler):
  only a frame length tells a truncated message from a whole one.
* **At most 256 open streams per connection.** The 257th ``new_stream`` blocks silently: bound
  concurrent requests per peer well below that (or reuse a persistent framed stream).
* **Call** :func:`dial` **before** ``host.new_stream`` (it returns at once when connected), so a
  hub that restarted or went away is dialled afresh rather than reported by a stale connection.
  A ``new_stream`` that fails right after the hub went away: :func:`dial` again.
* Peerstore entries of connected peers expire 2 h after their last identify (TTL 7200 s); the
  cleanup task then drops them even if the connection is still open. Nothing breaks (the
  connection keeps its keys), but peer lists should come from connections, not the peerstore.
* libp2p logs through the ``libp2p`` logger with ``propagate = False`` and no handler unless
  ``LIBP2P_DEBUG`` is set, so its records reach stderr through Python's last-resort handler.
  ``libp2p.protocol_muxer.multiselect_client`` logs an ERROR for every connection that closes
  while identify is running (every short-lived runner): the CLI should give the ``libp2p``
  logger its own handler and level.
"""
