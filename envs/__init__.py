"""Batched, domain-randomized gymnasium environments (issue: environments). Not yet implemented."""
