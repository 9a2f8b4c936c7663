"""What stops or protects a local run: the preflight checks before any component starts, one run per output folder,
and the accepted schema that later spans are judged by."""
