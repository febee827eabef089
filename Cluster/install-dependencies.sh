#!/bin/sh
# Installs the Debian packages Shoal needs to build, test and run.
# Safe to run again: apt-get skips what is already installed.
# The -dev packages also hold the static archives `shoal` links (libssl.a,
# libcrypto.a, libsqlite3.a, libz.a, libstdc++.a; see Package.swift).
set -eu

packages="libsqlite3-dev libssl-dev zlib1g-dev libstdc++-12-dev pkg-config openssl busybox-static curl skopeo docker-registry umoci"
# Peers that only benchmarks run beside Shoal (`shoal-bench cluster` compares
# with a 3-member etcd, `shoal-bench runtime` with crun and runc); tests never
# need them, so CI does not install them.
bench_packages="etcd-server crun runc"

# `--list` prints the package names (for .ci/run) and installs nothing.
if [ "${1:-}" = "--list" ]; then
    echo "$packages"
    exit 0
fi
# `--bench` also installs the benchmarks' peers.
if [ "${1:-}" = "--bench" ]; then
    packages="$packages $bench_packages"
fi

missing=""
for package in $packages; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-dependencies: need root to install:$missing (rerun with sudo)" >&2
        exit 1
    fi
    echo "install-dependencies: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
fi
echo "install-dependencies: ready"
