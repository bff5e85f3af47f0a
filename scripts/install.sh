#!/bin/sh
# install.sh BUILD DESTDIR PREFIX - `make install` once everything is built:
# the CMake install rules of BUILD (binaries, systemd unit, man pages, bash
# completion) and install-extra.sh (module source for DKMS, uapi headers,
# documentation), all under DESTDIR (empty: the live system).
set -eu
build=$1 dest=$2 prefix=$3
DESTDIR=$dest cmake --install "$build" --prefix "$prefix"
sh "$(dirname "$0")/install-extra.sh" "$dest" "$prefix"
