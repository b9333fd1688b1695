"""The runtime: what drives the domain in time (the simulated clock, due things, the push)."""
