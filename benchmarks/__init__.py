"""`footfall bench NAME` benchmarks."""
