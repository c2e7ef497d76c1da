"""``python benchmarks/time_features.py ...`` = ``python -m sessrec_bench time-features ...`` (kept for the commands
recorded in docs/benchmarks.md)."""

import sys

from sessrec_bench.time_features import main

if __name__ == "__main__":
    sys.exit(main())
