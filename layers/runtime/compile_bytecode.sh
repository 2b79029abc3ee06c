#!/usr/bin/env bash
# Compile the layer's modules to bytecode for the runtime's own Python version.
#
# Lambda mounts layers read-only at /opt, so Python cannot cache bytecode there: without .pyc
# files in the layer, every cold start compiles numpy, Powertools, the X-Ray SDK... from
# source (+360 ms measured, bench/README.md). The .pyc format changes with each minor version,
# so only an interpreter of exactly that version can write them; unchecked-hash .pyc files are
# used without comparing source timestamps, which zipping and unzipping do not preserve.
#
# usage: compile_bytecode.sh DIR PYTHON_VERSION   (PYC_PYTHON=/path/to/pythonX.Y to choose)
set -euo pipefail
dir=$1 version=$2
matches() { "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; }
python=${PYC_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in "python$version" "$HOME"/.pyenv/versions/"$version".*/bin/"python$version" \
                   /usr/local/bin/"python$version" /usr/bin/"python$version"; do
    if matches "$candidate"; then python=$candidate; break; fi
  done
fi
if [ -z "$python" ]; then
  echo "warning: no python$version found (set PYC_PYTHON): the layer ships without bytecode," \
       "so each cold start compiles its modules (bench/README.md)" >&2
  exit 0
fi
"$python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$dir" >/dev/null
echo "bytecode: $(find "$dir" -name '*.pyc' | wc -l) modules compiled by $python ($("$python" -V))"
