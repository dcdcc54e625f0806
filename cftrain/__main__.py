import sys

from cftrain.cli import main

sys.exit(main())
