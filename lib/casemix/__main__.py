import sys

from casemix.cli import main

sys.exit(main())
