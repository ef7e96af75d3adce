"""Crash safety and concurrency: SIGKILL mid-save, two processes writing at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from ldm_studio.gallery.index import GalleryIndex, GalleryQuery

CHILD = Path(__file__).with_name("writer_child.py")
REPO = Path(__file__).resolve().parents[2]


def start_writer(root: Path, index_path: Path, count: int, seed: int, size: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(CHILD), str(root), str(index_path), str(count), str(seed), str(size)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "ready"
    return process


def assert_every_png_opens(root: Path) -> set[str]:
    pngs = {str(p.resolve()) for p in root.rglob("*.png")}
    for path in pngs:
        with Image.open(path) as image:
            image.load()  # decodes every byte: a truncated file fails here
    return pngs


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")
def test_sigkill_mid_batch_leaves_only_whole_pngs_and_a_matching_index(tmp_path):
    root, index_path = tmp_path / "gallery", tmp_path / "index.sqlite3"
    rng = random.Random(5)
    saved_lines = 0
    for run in range(20):
        process = start_writer(root, index_path, 0, seed=run, size=192)
        time.sleep(rng.uniform(0.0, 0.25))
        process.send_signal(signal.SIGKILL)
        saved_lines += len(process.stdout.read().splitlines())
        process.wait()
        process.stdout.close()
        assert process.returncode == -signal.SIGKILL

    pngs = assert_every_png_opens(root)
    assert len(pngs) >= saved_lines > 0
    index = GalleryIndex(index_path)
    # Before any repair, no row points at a file that is not there.
    assert index.paths() <= pngs
    index.reconcile()
    assert index.paths() == pngs
    assert index.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(index.search_ids(GalleryQuery(text="child picture"))) == len(pngs)
    index.close()


def test_two_processes_writing_at_once_do_not_corrupt_the_index(tmp_path):
    root, index_path = tmp_path / "gallery", tmp_path / "index.sqlite3"
    per_process = 25
    # Same seed and prompt in both: they race for the very same file names every second.
    writers = [start_writer(root, index_path, per_process, seed=1, size=24) for _ in range(2)]
    outputs = [writer.communicate(timeout=120)[0].splitlines() for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0]
    written = {line for output in outputs for line in output}
    assert len(written) == 2 * per_process  # no name was handed out twice

    pngs = assert_every_png_opens(root)
    assert pngs == written
    index = GalleryIndex(index_path)
    assert index.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert index.paths() == pngs  # every save reached the index, none was lost to a lock
    favourites = index.search_ids(GalleryQuery(favourites_only=True))
    assert len(favourites) == 2 * len(range(0, per_process, 3))
    index.close()
