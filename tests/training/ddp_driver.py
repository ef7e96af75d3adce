"""Run under torchrun (two CPU processes): ``train lora`` and then ``train ldm``, each given as one
JSON list of CLI arguments. Exits non-zero if either command fails."""

from __future__ import annotations

import json
import sys

from ldm_studio.cli import main

if __name__ == "__main__":
    for arguments in sys.argv[1:]:
        status = main(json.loads(arguments))
        if status:
            sys.exit(status)
