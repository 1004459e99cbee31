#!/usr/bin/env bash
# The system packages the tests use, installed in this one place (`make test` runs it first):
# OpenSSH's sshd for the SFTP tests, Chromium and its driver for the console tests, wrk for the
# benchmarks, a CJK font so that screenshots show Chinese text as users see it, xmlsec1 (an XML-DSig
# implementation independent of the gateway's) to check the signed evidence the gateway issues; node's
# `soap` client.
# Nothing is installed when everything is already there; without root it says what is missing.
set -euo pipefail
# The npm `soap` package, a SOAP client that is not zeep, for the WSDL tests: kept in a cache folder
# outside the repository (CASE_EXCHANGE_NPM, default ~/.cache/case-exchange/npm), installed once.
NPM_DIR="${CASE_EXCHANGE_NPM:-$HOME/.cache/case-exchange/npm}"
if command -v npm >/dev/null && [ ! -f "$NPM_DIR/node_modules/soap/package.json" ]; then
  echo "installing the npm soap client for the tests into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --silent soap@1 >/dev/null
fi
PACKAGES=(openssh-server chromium chromium-driver wrk fonts-noto-cjk xmlsec1)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${missing[*]} (install them with: sudo apt-get install ${missing[*]})" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
echo "installing system packages for the tests: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
