"""torchrun's entry of one worker: ``python -m genlab.parallel RUN_DIR``."""

import sys

from genlab.parallel._worker import worker_main

worker_main(sys.argv[1])
