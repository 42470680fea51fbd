#!/usr/bin/env bash
# Writes the compose cluster's shared secrets into deploy/docker/cluster/secrets/ (kept out
# of git and of the image): cluster_secret (inter-node authentication), admin_token and
# scim_token (the same on every node). Existing files are kept: every node of a cluster
# must keep the secret it was started with. The containers run as uid 10001: as root, the
# files are given to it with mode 0600; otherwise they are 0644 inside a 0700 folder (only
# you can reach them on the host; the container reads them through the bind mount).
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets"
(umask 077; mkdir -p "$dir")
chmod 0700 "$dir"
for name in cluster_secret admin_token scim_token; do
    file="$dir/$name"
    if [[ ! -s "$file" ]]; then
        (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$file")
        echo "make-secrets: wrote $file"
    fi
    if [[ "$(id -u)" == 0 ]]; then
        chown 10001:10001 "$file"
        chmod 0600 "$file"
    else
        chmod 0644 "$file"
    fi
done
echo "make-secrets: admin token: $dir/admin_token"
