"""Run as a child process by the kill and concurrency tests: save images into a gallery in a loop.

Usage: python writer_child.py GALLERY_ROOT INDEX_PATH COUNT SEED_BASE SIZE
Prints "ready" once imported, then one line per saved image. COUNT 0 means forever.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.index import GalleryIndex
from ldm_studio.gallery.store import GalleryStore


def main(root: str, index_path: str, count: int, seed_base: int, size: int) -> None:
    store = GalleryStore(root)
    index = GalleryIndex(index_path)
    index.add_root(root)
    rng = np.random.default_rng(seed_base)
    print("ready", flush=True)
    number = 0
    while count == 0 or number < count:
        # Noise compresses badly, so each file is large enough for a kill to land mid-write.
        image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        request = GenerationRequest(
            prompt=f"child {seed_base}, picture", seed=seed_base, width=size, height=size
        )
        path = store.save(image, request, model_name="child-model", model_hash="0123456789")
        entry = index.add(path)
        if number % 3 == 0 and entry is not None:
            index.set_favourite([entry.id], True)
        print(path, flush=True)
        number += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
