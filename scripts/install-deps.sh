#!/bin/sh
# Installs what promptd needs to build and run (and, with --test, to run its
# test suite) from Debian 12's archive. Safe to run again. python3 runs the
# fake OpenAI server that `promptd demo` uses when no API key is set.
set -eu
pkgs="build-essential cmake pkg-config libev-dev libcjson-dev libsqlite3-dev libyaml-dev
      libcsv-dev libssl-dev libcurl4-openssl-dev libmicrohttpd-dev libgmime-3.0-dev libsystemd-dev
      python3"
test_pkgs="libcmocka-dev python3-jsonschema curl dovecot-imapd python3-aiosmtpd openssl prometheus
           systemd dpkg-dev file debootstrap systemd-container"
case "${1:-}" in
  --test) pkgs="$pkgs $test_pkgs" ;;
  "") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # the list is meant to split into words
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
