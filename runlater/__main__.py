import sys

from runlater.cli import main

sys.exit(main())
