"""``python -m cloud_sync.fleet_sim provision|run ...``."""

from cloud_sync.fleet_sim.command import main

raise SystemExit(main())
