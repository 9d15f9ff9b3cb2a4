#!/usr/bin/env bash
# Installs the `duplex` command as a .NET tool from this checkout: packs src/Duplex.Cli into
# artifacts/ and installs (or updates) it from there, for the current user (~/.dotnet/tools),
# or into a directory of your choice.
#   scripts/install.sh                 # then: duplex serve   (~/.dotnet/tools must be on PATH)
#   scripts/install.sh --tool-path DIR # then: DIR/duplex serve
#   scripts/install.sh --uninstall
set -euo pipefail
cd "$(dirname "$0")/.."
where=(--global)
case "${1:-}" in
  --tool-path) [ -n "${2:-}" ] || { echo "usage: scripts/install.sh [--tool-path DIR | --uninstall]" >&2; exit 64; }; where=(--tool-path "$2") ;;
  --uninstall) dotnet tool uninstall --global Duplex.Cli; exit ;;
  "") ;;
  *) echo "usage: scripts/install.sh [--tool-path DIR | --uninstall]" >&2; exit 64 ;;
esac
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
echo "install: packing Duplex.Cli $version into artifacts/" >&2
dotnet pack src/Duplex.Cli -c Release -o artifacts --nologo -v quiet >/dev/null
# The package keeps its version while the code changes: drop NuGet's cached copy, or the tool
# would be installed from it instead of from what was just packed.
rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}/duplex.cli/$version"
# `update` installs when absent and replaces an earlier install; the local feed comes first.
dotnet tool update "${where[@]}" Duplex.Cli --version "$version" --add-source artifacts --ignore-failed-sources >/dev/null
if [ "${where[0]}" = --global ]; then
  echo "install: duplex $version is installed in ~/.dotnet/tools; run: duplex serve" >&2
  case ":$PATH:" in *":$HOME/.dotnet/tools:"*) ;; *) echo "install: add ~/.dotnet/tools to PATH (export PATH=\"\$PATH:\$HOME/.dotnet/tools\")" >&2 ;; esac
else
  echo "install: duplex $version is installed in ${where[1]}; run: ${where[1]}/duplex serve" >&2
fi
