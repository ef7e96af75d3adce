"""Gallery at scale: build a 50,000-image gallery of small synthetic PNGs and measure what users feel.

    python bench/gallery_50k.py [--count 50000] [--dir DIR]

Reports, each next to a baseline measured in the same run:
- index rebuild from the files alone (baseline: only listing + stat-ing the files);
- start-up reconcile with nothing changed;
- full-text search latency p50/p99 over typed prefixes (baseline: a LIKE scan of the same words),
  in SQL alone and through the panel (query + model reset + repaint);
- cold start of the app to the first screen of thumbnails, in a fresh process, with an empty and
  with a warm thumbnail cache (baseline: a fresh process showing an empty Qt window);
- jumping to the middle of the gallery until that screen's thumbnails are shown.
Targets from the issue: open < 1 s, search < 50 ms.

``--dir`` keeps the built gallery for the next run (building 50,000 files takes a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TYPED = [
    "lighthouse cliff",
    "red fox snow",
    "oil painting golden",
    "astronaut horse",
    "neon city night",
    "zzz",
]


def typed_prefixes() -> list[str]:
    """Every prefix a user types on the way to each phrase: results while typing."""
    return [phrase[:end] for phrase in TYPED for end in range(1, len(phrase) + 1)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def spread(times: list[float]) -> str:
    return f"p50 {ms(statistics.median(times))}  p99 {ms(percentile(times, 0.99))}"


# -- the child processes: a fresh interpreter per cold start --------------------------------------


def child_bare() -> dict:
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication(sys.argv[:1])
    window = QMainWindow()
    window.resize(1360, 860)
    window.show()
    app.processEvents()
    window.repaint()
    return {"first_paint": time.time() - float(os.environ["BENCH_T0"])}


def visible_rows(panel) -> list[int]:
    from PySide6.QtCore import QPoint

    grid, model = panel.grid, panel.model
    area = grid.viewport().rect()
    first = grid.indexAt(area.topLeft() + QPoint(4, 4)).row()
    rows = []
    for row in range(max(first, 0), min(model.rowCount(), max(first, 0) + 400)):
        if grid.visualRect(model.index(row)).intersects(area):
            rows.append(row)
        elif rows:
            break
    return rows


def wait_for_screen(app, panel) -> int:
    from ldm_studio.app.gallery_model import ThumbnailStateRole

    model = panel.model
    while True:
        app.processEvents()
        rows = visible_rows(panel)
        if rows and all(model.data(model.index(r), ThumbnailStateRole) != "loading" for r in rows):
            panel.grid.viewport().repaint()  # painted, not just loaded
            return len(rows)
        time.sleep(0.001)


def child_open(root: str) -> dict:
    t0 = float(os.environ["BENCH_T0"])
    from PySide6.QtWidgets import QApplication, QMainWindow

    from ldm_studio.app.gallery_actions import GalleryActions
    from ldm_studio.gallery.index import GalleryIndex
    from ldm_studio.gallery.store import GalleryStore
    from ldm_studio.gallery.thumbnails import ThumbnailCache
    from ldm_studio.ui.gallery_panel import GalleryPanel
    from ldm_studio.ui.style import apply_style

    app = QApplication(sys.argv[:1])
    apply_style(app)
    imported = time.time() - t0
    window = QMainWindow()
    # scans in the background
    panel = GalleryPanel(GalleryActions(GalleryStore(root), GalleryIndex(), ThumbnailCache()))
    scanned = []
    panel.model.reconciled.connect(lambda report: scanned.append(time.time() - t0))
    window.setCentralWidget(panel)
    window.resize(1360, 860)
    window.show()
    constructed = time.time() - t0
    app.processEvents()
    window.repaint()
    first_paint = time.time() - t0
    tiles = wait_for_screen(app, panel)
    first_screen = time.time() - t0

    search_times = []
    for text in typed_prefixes():
        start = time.perf_counter()
        panel.toolbar.search_box.setText(text)
        panel.apply_filters()
        panel.grid.viewport().repaint()
        search_times.append(time.perf_counter() - start)
    panel.toolbar.search_box.setText("")
    panel.apply_filters()

    start = time.perf_counter()
    middle = panel.model.index(panel.model.rowCount() // 2)
    panel.grid.scrollTo(middle)
    wait_for_screen(app, panel)
    jump = time.perf_counter() - start

    while not scanned:
        app.processEvents()
        time.sleep(0.005)
    rows = panel.model.rowCount()
    panel.actions.shutdown()
    return {
        "imports": imported,
        "constructed": constructed,
        "first_paint": first_paint,
        "first_screen": first_screen,
        "tiles": tiles,
        "rows": rows,
        "scan_done": scanned[0],
        "panel_search": search_times,
        "jump_to_middle": jump,
    }


def run_child(mode: str, home: Path, root: Path) -> dict:
    env = {**os.environ, "LDM_STUDIO_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    env["BENCH_T0"] = repr(time.time())
    result = subprocess.run(
        [sys.executable, __file__, f"--child-{mode}", str(root)], env=env, capture_output=True, text=True
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise SystemExit(f"child {mode} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the parent: build, rebuild, search, then the cold starts ------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, help="keep the gallery here and reuse it next time")
    parser.add_argument("--child-open", metavar="ROOT")
    parser.add_argument("--child-bare", metavar="ROOT")
    args = parser.parse_args()
    if args.child_open or args.child_bare:
        result = child_open(args.child_open) if args.child_open else child_bare()
        print(json.dumps(result))
        os._exit(0)  # skip interpreter teardown: its cost is not part of opening the gallery

    base = args.dir or Path(tempfile.mkdtemp(prefix="ldm-gallery-50k-"))
    home, root = base / "home", base / "gallery"
    os.environ["LDM_STUDIO_HOME"] = str(home)
    from bench.gallery_synthetic import build_gallery
    from ldm_studio.gallery.index import GalleryIndex, GalleryQuery, fts_query, scan_images
    from ldm_studio.paths import user_dirs

    existing = sum(1 for _ in scan_images(root)) if root.exists() else 0
    if existing != args.count:
        shutil.rmtree(root, ignore_errors=True)
        print(f"building {args.count:,} synthetic PNGs in {root} …", flush=True)
        start = time.perf_counter()
        build_gallery(root, args.count, size=64, days=730)
        print(f"  built in {time.perf_counter() - start:.0f} s")
    print(f"gallery: {args.count:,} images, {sum(1 for _ in root.iterdir())} day folders")

    dirs = user_dirs()
    for suffix in ("", "-wal", "-shm"):
        dirs.gallery_index.with_name(dirs.gallery_index.name + suffix).unlink(missing_ok=True)
    start = time.perf_counter()
    listed = sum(1 for _ in scan_images(root))
    scan_only = time.perf_counter() - start
    index = GalleryIndex()
    index.add_root(root)
    start = time.perf_counter()
    report = index.reconcile()
    rebuild = time.perf_counter() - start
    assert report.added == listed == args.count, (report, listed)
    start = time.perf_counter()
    again = index.reconcile()
    startup_reconcile = time.perf_counter() - start
    assert not again.changed

    sql_times, like_times = [], []
    for text in typed_prefixes():
        start = time.perf_counter()
        index.search_ids(GalleryQuery(text=text))
        sql_times.append(time.perf_counter() - start)
        words = (fts_query(text) or "").replace('"', "").replace("*", "").split()
        where = " AND ".join("prompt LIKE ?" for _ in words) or "1"
        start = time.perf_counter()
        index.db.execute(
            f"SELECT id FROM images WHERE {where} ORDER BY created DESC", [f"%{w}%" for w in words]
        ).fetchall()
        like_times.append(time.perf_counter() - start)
    index.close()

    shutil.rmtree(dirs.cache / "thumbnails", ignore_errors=True)
    bare = run_child("bare", home, root)
    cold = run_child("open", home, root)
    warm = run_child("open", home, root)

    print("\nindex")
    print(f"  rebuild from {args.count:,} files     {rebuild:8.2f} s   (listing+stat only {scan_only:.2f} s,"
          f" x{rebuild / scan_only:.1f})")  # fmt: skip
    print(f"  start-up reconcile, no change {ms(startup_reconcile)}")
    print(f"\nfull-text search over {len(sql_times)} typed prefixes (target < 50 ms)")
    print(f"  SQL ids only        {spread(sql_times)}")
    speedup = statistics.median(like_times) / statistics.median(sql_times)
    print(f"  LIKE scan baseline  {spread(like_times)}  (FTS is x{speedup:.1f} faster at p50)")
    for name, run in (("cold thumbnail cache", cold), ("warm thumbnail cache", warm)):
        panel = run["panel_search"]
        print(f"\ncold start of the app, {name} ({run['rows']:,} rows, {run['tiles']} tiles on screen)")
        print(f"  imports + QApplication      {ms(run['imports'])}")
        print(f"  panel built and shown       {ms(run['constructed'])}")
        print(f"  first paint                 {ms(run['first_paint'])}")
        ratio = run["first_screen"] / bare["first_paint"]
        bare_text = ms(bare["first_paint"]).strip()
        comparison = f"target < 1 s; bare Qt window {bare_text}, x{ratio:.1f}"
        print(f"  first screen of thumbnails  {ms(run['first_screen'])}   ({comparison})")
        print(f"  background reconcile done   {ms(run['scan_done'])}")
        print(f"  search in the panel         {spread(panel)}")
        print(f"  jump to the middle, shown   {ms(run['jump_to_middle'])}")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
