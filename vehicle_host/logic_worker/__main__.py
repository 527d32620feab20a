import sys

from vehicle_host.logic_worker.worker import main

sys.exit(main())
