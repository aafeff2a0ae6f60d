#!/usr/bin/env bash
# Re-creates frontend/static/vendor/ from the exact versions pinned in
# frontend/package.json + package-lock.json.  Reproducible: `npm ci` installs
# the locked tree, then only the files the arena pages load are copied (plus
# each library's licence), source-map comments are stripped (we do not ship
# the .map files, and Django's ManifestStaticFilesStorage would fail on the
# dangling references), and vendor/README.md is regenerated with versions,
# licences, sizes and sha256 sums.
#
# Usage:  bash frontend/vendor.sh        (needs node >= 18 and npm; network
#                                          access to the npm registry only)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

npm ci --no-audit --no-fund --ignore-scripts

NM="$HERE/node_modules"
OUT="$HERE/static/vendor"
rm -rf "$OUT"
mkdir -p "$OUT"

version() { node -p "require('$NM/$1/package.json').version"; }

# copy SRC DEST_REL : copies one file and strips any trailing sourceMappingURL comment
copy() {
  local src="$NM/$1" dest="$OUT/$2"
  mkdir -p "$(dirname "$dest")"
  case "$dest" in
    *.js|*.mjs|*.cjs)
      sed -E '/^[[:space:]]*\/\/[#@] sourceMappingURL=/d; s#//[#@] sourceMappingURL=[^[:space:]]*$##' "$src" > "$dest" ;;
    *)
      cp "$src" "$dest" ;;
  esac
}

# --- htmx (classic script, global `htmx`) -----------------------------------
copy htmx.org/dist/htmx.min.js                    htmx/htmx.min.js
copy htmx.org/LICENSE                             htmx/LICENSE

# --- three (ES module; the one copy shared by model-viewer and the splat viewer)
copy three/build/three.module.min.js              three/three.module.min.js
copy three/build/three.core.min.js                three/three.core.min.js
copy three/LICENSE                                three/LICENSE
# Draco decoder for glTF (wasm + wrapper, and the asm.js fallback)
copy three/examples/jsm/libs/draco/gltf/draco_decoder.js      three/draco/draco_decoder.js
copy three/examples/jsm/libs/draco/gltf/draco_decoder.wasm    three/draco/draco_decoder.wasm
copy three/examples/jsm/libs/draco/gltf/draco_wasm_wrapper.js three/draco/draco_wasm_wrapper.js
copy three/examples/jsm/libs/draco/README.md                  three/draco/README.md
# Basis Universal transcoder (KTX2 textures)
copy three/examples/jsm/libs/basis/basis_transcoder.js        three/basis/basis_transcoder.js
copy three/examples/jsm/libs/basis/basis_transcoder.wasm      three/basis/basis_transcoder.wasm
copy three/examples/jsm/libs/basis/README.md                  three/basis/README.md

# --- model-viewer: the "module" build, which imports the bare specifier "three"
copy @google/model-viewer/dist/model-viewer-module.min.js     model-viewer/model-viewer-module.min.js
copy @google/model-viewer/LICENSE                             model-viewer/LICENSE

# --- meshoptimizer decoder (classic script, global MeshoptDecoder); model-viewer
#     needs `meshoptDecoderLocation` set to load EXT_meshopt_compression models
copy meshoptimizer/meshopt_decoder.cjs                        meshoptimizer/meshopt_decoder.js
copy meshoptimizer/LICENSE.md                                 meshoptimizer/LICENSE.md

# --- Gaussian splats viewer (ES module, imports "three")
copy @mkkellogg/gaussian-splats-3d/build/gaussian-splats-3d.module.js gaussian-splats-3d/gaussian-splats-3d.module.js
copy @mkkellogg/gaussian-splats-3d/LICENSE                            gaussian-splats-3d/LICENSE

# --- Chart.js + error bars plugin (classic UMD scripts: globals Chart, ChartErrorBars)
copy chart.js/dist/chart.umd.min.js                           chart.js/chart.umd.min.js
copy chart.js/LICENSE.md                                      chart.js/LICENSE.md
copy chartjs-chart-error-bars/build/index.umd.min.js          chartjs-chart-error-bars/index.umd.min.js
copy chartjs-chart-error-bars/LICENSE                         chartjs-chart-error-bars/LICENSE

# --- README with versions / licences / checksums ----------------------------
V_HTMX=$(version htmx.org)
V_THREE=$(version three)
V_MV=$(version @google/model-viewer)
V_MO=$(version meshoptimizer)
V_GS=$(version @mkkellogg/gaussian-splats-3d)
V_CHART=$(version chart.js)
V_EB=$(version chartjs-chart-error-bars)

lib_of() {
  case "$1" in
    htmx/*) echo "htmx.org $V_HTMX|0BSD";;
    three/draco/*) echo "three $V_THREE (Draco decoder 1.5.x by Google)|Apache-2.0 (Draco); see three/draco/README.md";;
    three/basis/*) echo "three $V_THREE (Basis Universal transcoder by Binomial)|Apache-2.0 (Basis Universal); see three/basis/README.md";;
    three/*) echo "three $V_THREE|MIT";;
    model-viewer/*) echo "@google/model-viewer $V_MV|Apache-2.0 (bundles lit: BSD-3-Clause, fflate: MIT, three addons: MIT)";;
    meshoptimizer/*) echo "meshoptimizer $V_MO|MIT";;
    gaussian-splats-3d/*) echo "@mkkellogg/gaussian-splats-3d $V_GS|MIT";;
    chart.js/*) echo "chart.js $V_CHART|MIT";;
    chartjs-chart-error-bars/*) echo "chartjs-chart-error-bars $V_EB|MIT";;
    *) echo "?|?";;
  esac
}

{
  echo "# Vendored front-end libraries"
  echo
  echo "Generated by \`frontend/vendor.sh\` from \`frontend/package.json\` / \`package-lock.json\`"
  echo "(\`npm ci\`, then copy). Do not edit these files by hand: bump the version in"
  echo "package.json, run \`npm install\` in frontend/ to update the lock file, then run"
  echo "\`bash frontend/vendor.sh\` and commit the result. \`//# sourceMappingURL\` comments"
  echo "are stripped (the .map files are not shipped). Nothing here is fetched from a CDN at"
  echo "run time: battle.js points model-viewer's Draco / KTX2 / meshopt decoder locations at"
  echo "the copies below (model-viewer's lottieLoaderLocation is left at its CDN default: it"
  echo "is only used by model-viewer's createLottieTexture() API, which the arena never calls)."
  echo
  echo "| version | library | license |"
  echo "| --- | --- | --- |"
  echo "| $V_HTMX | htmx.org | 0BSD |"
  echo "| $V_THREE | three | MIT |"
  echo "| $V_MV | @google/model-viewer | Apache-2.0 |"
  echo "| $V_MO | meshoptimizer | MIT |"
  echo "| $V_GS | @mkkellogg/gaussian-splats-3d | MIT |"
  echo "| $V_CHART | chart.js | MIT |"
  echo "| $V_EB | chartjs-chart-error-bars | MIT |"
  echo
  echo "## Import map the templates must use"
  echo
  echo '```html'
  echo '<script type="importmap">'
  echo '{"imports": {'
  echo '  "three": "/static/vendor/three/three.module.min.js",'
  echo '  "@google/model-viewer": "/static/vendor/model-viewer/model-viewer-module.min.js",'
  echo '  "@mkkellogg/gaussian-splats-3d": "/static/vendor/gaussian-splats-3d/gaussian-splats-3d.module.js"'
  echo '}}'
  echo '</script>'
  echo '```'
  echo
  echo "Classic scripts: \`htmx/htmx.min.js\` (global \`htmx\`), \`chart.js/chart.umd.min.js\`"
  echo "(global \`Chart\`), then \`chartjs-chart-error-bars/index.umd.min.js\` (global"
  echo "\`ChartErrorBars\`; needs \`Chart\` loaded first)."
  echo
  echo "## Files"
  echo
  echo "| file | from | license | bytes | sha256 |"
  echo "| --- | --- | --- | ---: | --- |"
  (cd "$OUT" && find . -type f ! -name README.md | sed 's#^\./##' | LC_ALL=C sort) | while read -r f; do
    info="$(lib_of "$f")"
    size=$(wc -c < "$OUT/$f" | tr -d ' ')
    sum=$(sha256sum "$OUT/$f" | cut -c1-16)
    echo "| \`$f\` | ${info%%|*} | ${info#*|} | $size | \`$sum…\` |"
  done
  echo
  total=$(du -cb $(cd "$OUT" && find . -type f ! -name README.md | sed "s#^\.#$OUT#") | tail -1 | cut -f1)
  echo "Total: $total bytes."
} > "$OUT/README.md"

echo "vendored into $OUT:"
(cd "$OUT" && find . -type f | LC_ALL=C sort | xargs ls -l | awk '{printf "%10d  %s\n", $5, $9}')
du -sh "$OUT"
