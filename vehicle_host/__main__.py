import sys

from vehicle_host.cli import main

sys.exit(main())
