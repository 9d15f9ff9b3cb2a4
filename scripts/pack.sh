#!/usr/bin/env bash
# Builds the NuGet packages (Release) into artifacts/, or into the directory given: Duplex,
# Duplex.Hub, Duplex.Hub.Redis, Duplex.AspNetCore and the duplex tool (Duplex.Cli), all with the
# version in Directory.Build.props, each with its readme, MIT licence, XML docs and a symbols
# package (.snupkg, SourceLink).
#   scripts/pack.sh [OUTPUT_DIRECTORY]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-artifacts}"
case "$out" in -*) echo "usage: scripts/pack.sh [OUTPUT_DIRECTORY]" >&2; exit 64 ;; esac
mkdir -p "$out"
for project in Duplex Duplex.Hub Duplex.Hub.Redis Duplex.AspNetCore Duplex.Cli; do
  dotnet pack "src/$project" -c Release -o "$out" --nologo -v quiet >/dev/null
done
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
echo "pack: version $version in $out/:" >&2
ls "$out" | grep -F ".$version." >&2
