"""The pure core: cache keys, freshness policy, entries, sealing, rate-limit decisions, the
request flow. No sockets, no clock, no environment: everything here is a value or a function
of values, so it is tested without a network."""
