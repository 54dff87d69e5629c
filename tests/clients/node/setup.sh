#!/bin/sh
# Installs the pinned Node client libraries (package.json + package-lock.json
# beside this file) into a cache outside the tracked tree, only when the
# cache is missing or was made from another lock file. Installs node and npm
# from Debian first when they are missing.
#
#   BS_NODE_CACHE   the cache directory (default: .cache beside this file,
#                   git-ignored); run_node.py reads the same variable.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${BS_NODE_CACHE:-$here/.cache}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: node/npm missing, installing Debian's nodejs and npm"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi

# The cache is current when it holds node_modules made from this very lock
# file: its hash is kept in a stamp written only after `npm ci` succeeded.
want=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp="$cache/.installed-from"
if [ -d "$cache/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

echo "setup.sh: installing the pinned Node clients into $cache"
mkdir -p "$cache"
rm -f "$stamp"
cp "$here/package.json" "$here/package-lock.json" "$cache/"
# npm ci installs exactly what the lock file says (it fails rather than
# resolve anything anew) and starts from an empty node_modules.
(cd "$cache" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
