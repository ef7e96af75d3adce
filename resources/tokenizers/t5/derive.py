"""Rebuild ``tokenizer.json`` here from the T5 v1.1 tokenizer that InvokeAI ships (Apache-2.0).

Not run by the app: it documents (and lets anyone repeat) how the shipped file was made. The source is
``invokeai/backend/t5/tokenizer/tokenizer.json`` inside the ``invokeai`` 6.14.2 wheel on PyPI
(``pip download --no-deps invokeai==6.14.2``). The same 32,000 pieces, scores and normaliser also ship,
as a C array, in ``stable-diffusion-cpp-python`` 0.4.7 (MIT): two independent copies of Google's
T5 vocabulary. The file is written without indentation (same content, a third smaller). Usage::

    python derive.py path/to/invokeai-6.14.2-py3-none-any.whl
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

MEMBER = "invokeai/backend/t5/tokenizer/tokenizer.json"
EXPECTED_SHA256 = "f5dfec163765e18e270537fe896c49f5fad74db1525641d9b255a3008b999596"
CHECK = ("a photo of a cat", [3, 9, 1202, 13, 3, 9, 1712, 1])  # T5's own ids, with </s>


def derive(wheel: Path, out_dir: Path) -> None:
    raw = zipfile.ZipFile(wheel).read(MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256:
        raise SystemExit(f"{MEMBER} has SHA-256 {digest}, expected {EXPECTED_SHA256}")
    table = json.loads(raw)
    target = out_dir / "tokenizer.json"
    target.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")

    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(target)).encode(CHECK[0]).ids
    if ids != CHECK[1]:
        raise SystemExit(f"{CHECK[0]!r} encodes to {ids}, expected {CHECK[1]}")
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    derive(Path(sys.argv[1]), Path(__file__).resolve().parent)
