#!/usr/bin/env bash
# Packs the one-folder Linux build into dist/cosa-studio-<version>-linux-<arch>.tar.gz, and into an AppImage when
# appimagetool is on PATH (APPIMAGE=0 leaves the AppImage out). Run packaging/build.sh first.
# DIST overrides the folder that holds the build and receives the archives (default: dist).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DIST=${DIST:-dist}
APP_ID=io.github.cosa_studio.CosaStudio
VERSION=$("$PY" -c "import studio; print(studio.__version__)")
ARCH=$(uname -m)
if [ ! -x "$DIST/cosa-studio/cosa-studio" ]; then
  echo "linux_dist.sh: $DIST/cosa-studio/cosa-studio not found; run packaging/build.sh first" >&2
  exit 1
fi
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
NAME="cosa-studio-$VERSION"
ROOT="$STAGE/$NAME"
mkdir -p "$ROOT/lib" "$ROOT/bin" "$ROOT/share/applications" "$ROOT/share/metainfo" \
  "$ROOT/share/icons/hicolor/scalable/apps"
cp -a "$DIST/cosa-studio" "$ROOT/lib/cosa-studio"
ln -s ../lib/cosa-studio/cosa-studio "$ROOT/bin/cosa-studio"
cp "packaging/$APP_ID.desktop" "$ROOT/share/applications/"
cp "packaging/$APP_ID.metainfo.xml" "$ROOT/share/metainfo/"
cp "resources/icons/$APP_ID.svg" "$ROOT/share/icons/hicolor/scalable/apps/"
for png in resources/icons/"$APP_ID"-*.png; do
  size=${png##*-}
  size=${size%.png}
  mkdir -p "$ROOT/share/icons/hicolor/${size}x${size}/apps"
  cp "$png" "$ROOT/share/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done

TARBALL="$DIST/$NAME-linux-$ARCH.tar.gz"
tar -C "$STAGE" -czf "$TARBALL.part" "$NAME"
mv -f "$TARBALL.part" "$TARBALL"
echo "wrote $TARBALL"

if [ "${APPIMAGE:-1}" = 0 ]; then
  echo "APPIMAGE=0: AppImage skipped"
elif command -v appimagetool >/dev/null 2>&1; then
  APPDIR="$STAGE/CoSA_Studio.AppDir"
  mkdir -p "$APPDIR"
  cp -a "$ROOT" "$APPDIR/usr"
  cp "packaging/$APP_ID.desktop" "resources/icons/$APP_ID.svg" "$APPDIR/"
  cat > "$APPDIR/AppRun" <<'APPRUN'
#!/bin/sh
HERE=$(dirname "$(readlink -f "$0")")
exec "$HERE/usr/lib/cosa-studio/cosa-studio" "$@"
APPRUN
  chmod +x "$APPDIR/AppRun"
  IMAGE="$DIST/CoSA_Studio-$VERSION-$ARCH.AppImage"
  ARCH="$ARCH" appimagetool "$APPDIR" "$IMAGE.part"
  mv -f "$IMAGE.part" "$IMAGE"
  echo "wrote $IMAGE"
else
  echo "appimagetool not found: AppImage skipped"
fi
