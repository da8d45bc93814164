import sys

from snapsafe.agent.main import main

sys.exit(main())
