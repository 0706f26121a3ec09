"""End-to-end tests: workflows run by nektos/act in host mode (see README.md)."""
