"""``ldm-studio`` and ``python -m ldm_studio``: the window, or a subcommand of the CLI.

Kept import-light on purpose: the window must paint before torch is imported.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from ldm_studio.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
