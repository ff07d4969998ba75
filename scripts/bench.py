"""One benchmark command for issue 15: measures each target side by side and rewrites BENCHMARKS.md.

    .venv/bin/python scripts/bench.py [--quick] [--only overhead,parallel,fisher,asha,evaluation,gpu,memory]
                                      [--out BENCHMARKS.md]

The sections live in scripts/bench/ (one module each); ``--only gpu`` runs the GPU path alone on a CUDA
machine. Run it at ``nice -n 19`` with ``OMP_NUM_THREADS=1`` on a shared machine.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/: the bench package, bench_*.py
    from bench.cli import main

    main()
