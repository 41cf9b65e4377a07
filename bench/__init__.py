"""`make bench`: measurements anyone can rerun, beside a peer (urlwatch) and the machine's limits."""
