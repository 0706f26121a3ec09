"""What tests, the demo and the benchmarks run against: the simulated GitHub API, in-memory
fakes of the fleet, and a whole fleet of real processes on loopback."""
