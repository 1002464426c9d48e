#!/usr/bin/env bash
# Installs the built nnjit into a temporary prefix, then configures, builds and runs a
# consumer project that uses find_package(nnjit). A second argument names the sanitizers
# nnjit was built with (NNJIT_SANITIZE): the consumer is built with them too, since a
# program without their runtime cannot load a library that needs it.
set -euo pipefail
build=$1 sanitize=${2:-} src=$(cd "$(dirname "$0")" && pwd)
flags=()
if [ -n "$sanitize" ]; then
  flags=(-DCMAKE_CXX_FLAGS="-fsanitize=$sanitize" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=$sanitize")
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" "${flags[@]}" >/dev/null
cmake --build "$tmp/build" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/build/consumer"
