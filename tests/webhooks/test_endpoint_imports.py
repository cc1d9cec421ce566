"""The webhook endpoint is the hot path of a web process: importing it loads the ledger's domains,
not the scoring maths or the sync (create_app hands it the topics' handlers)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_the_webhook_endpoint_loads_no_scoring_sync_or_scipy() -> None:
    script = (
        "import json, sys\n"
        "import app.webhooks.endpoint\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'"
        " or m.startswith(('app.scoring', 'app.sync')))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
