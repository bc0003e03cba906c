"""The runners of the example article "Estimating π with random points" (see registry.py)."""
