#!/usr/bin/env bash
# Build LDM Studio as a one-folder desktop application: dist/ldm-studio/ (see packaging/README.md).
#
#   packaging/build.sh            build (incremental: PyInstaller reuses build/pyinstaller/)
#   packaging/build.sh --clean    throw the cache away first
#
# Needs the app's dependencies and PyInstaller in the current Python: pip install -e '.[package]'
set -euo pipefail

cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"

if ! "$python" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: PyInstaller is not installed in $python; run: $python -m pip install -e '.[package]'" >&2
    exit 1
fi
if [ ! -d resources/models ] || [ -z "$(ls -A resources/models 2>/dev/null)" ]; then
    echo "build.sh: warning: resources/models/ is empty, so the build will have no bundled model" >&2
fi

clean=()
if [ "${1:-}" = "--clean" ]; then
    clean=(--clean)
fi

"$python" -m PyInstaller --noconfirm "${clean[@]}" \
    --distpath dist --workpath build/pyinstaller packaging/ldm-studio.spec

app=dist/ldm-studio
if [ "$(uname)" = "Darwin" ]; then
    app="dist/LDM Studio.app/Contents/MacOS"
fi
"$app/ldm-studio" --version
echo "built $(du -sh dist/ldm-studio | cut -f1) in dist/ldm-studio/ (run it: dist/ldm-studio/ldm-studio)"
