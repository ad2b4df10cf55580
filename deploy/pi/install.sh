#!/usr/bin/env bash
# Install hipsense on Raspberry Pi OS (Bookworm or later, Python 3.11+) as a systemd service.
#
#   sudo deploy/pi/install.sh --bundle /media/usb/p-7k2m9q4x3b [--source DIR|WHEEL] [--no-voice] [--no-compile]
#
# --bundle        the Pi's config bundle from `hipsense provision` (hipsense.toml with [mqtt], ca.crt)
# --source        what pip installs: a source tree or a wheel (default: this repository)
# --no-voice      do not install espeak-ng
# --no-compile    do not install a C compiler: the angle filter runs as pure Python (~20 % more CPU)
# --dry-run       print the commands instead of running them
# --print-config  print the config this would install, and stop
#
# Idempotent: re-running upgrades the package and replaces the [mqtt] settings from the bundle,
# keeping the rest of an existing /etc/hipsense/hipsense.toml (sensor address, side, ...).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$HERE/../.." && pwd)"
BUNDLE=""
VOICE=1
COMPILE=1
DRY=0
PRINT_CONFIG=0
PREFIX=/opt/hipsense
ETC=/etc/hipsense
UNIT=/etc/systemd/system/hipsense.service
WRAPPER=/usr/local/bin/hipsense

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --bundle) BUNDLE="$2"; shift 2 ;;
    --source) SOURCE="$2"; shift 2 ;;
    --no-voice) VOICE=0; shift ;;
    --no-compile) COMPILE=0; shift ;;
    --dry-run) DRY=1; shift ;;
    --print-config) PRINT_CONFIG=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
done

run() { if [[ $DRY == 1 ]]; then echo "+ $*"; else "$@"; fi; }

merged_config() {
  # [mqtt] from the bundle; every other table from the installed file, else the example
  # (awk: skip from the "[mqtt]" header to the next table header).
  local rest="$ETC/hipsense.toml"
  [[ -f "$rest" ]] || rest="$HERE/hipsense.toml"
  cat "$BUNDLE/hipsense.toml"
  echo
  awk '/^\[/{skip=($0 ~ /^\[mqtt\]/)} !skip' "$rest"
}

[[ -n "$BUNDLE" ]] || { echo "error: --bundle DIR is required (from 'hipsense provision')" >&2; exit 2; }
[[ -f "$BUNDLE/hipsense.toml" ]] || { echo "error: $BUNDLE/hipsense.toml not found" >&2; exit 2; }
if [[ $PRINT_CONFIG == 1 ]]; then merged_config; exit 0; fi
if [[ $DRY == 0 && $EUID -ne 0 ]]; then echo "error: run as root (sudo)" >&2; exit 1; fi

# 1. System packages: BlueZ for BLE, venv for an isolated install, qrencode for the patient's
#    page's QR code, avahi-daemon for its <hostname>.local name (Pi OS has it), espeak-ng for the voice.
#    From a source tree, gcc and the Python headers build the calibrated angle filter's C module
#    (hipsense/signal/_anglefilter.c: ~20 % less CPU on the live path, docs/performance.md
#    "Round 5"); without them pip installs pure Python, which gives the same angles.
packages=(bluez python3-venv avahi-daemon qrencode)
if [[ $VOICE == 1 ]]; then packages+=(espeak-ng); fi
if [[ $COMPILE == 1 && -d "$SOURCE" ]]; then packages+=(gcc python3-dev); fi
run apt-get update
run apt-get install -y --no-install-recommends "${packages[@]}"

# 2. An unprivileged system user, in the groups BlueZ (D-Bus policy) and ALSA allow.
if ! id hipsense >/dev/null 2>&1; then
  run useradd --system --user-group --home-dir /var/lib/hipsense --no-create-home \
      --shell /usr/sbin/nologin hipsense
fi
run usermod -aG bluetooth,audio hipsense

# 3. The package in its own venv (numpy/scipy wheels come from piwheels on 32-bit Pi OS).
run python3 -m venv "$PREFIX/venv"
run "$PREFIX/venv/bin/pip" install --upgrade pip
run "$PREFIX/venv/bin/pip" install --upgrade "$SOURCE[ble,mqtt]"
# pip does not say when the optional C module failed to build: ask it, and say so plainly
if ! run "$PREFIX/venv/bin/python" -c "import hipsense.signal._anglefilter" 2>/dev/null; then
  echo "warning: the angle filter's C module was not built (no gcc/python3-dev, or --no-compile):" \
       "the service runs it as pure Python — the same angles, ~20 % more CPU" >&2
fi

# 4. The config, mode 0600 and owned by hipsense: it holds the MQTT password.
run install -d -m 0750 -o root -g hipsense "$ETC"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
merged_config >"$tmp"
run install -m 0600 -o hipsense -g hipsense "$tmp" "$ETC/hipsense.toml"
if [[ -f "$BUNDLE/ca.crt" ]]; then
  run install -m 0644 -o root -g hipsense "$BUNDLE/ca.crt" "$ETC/ca.crt"
fi

# The state directory (systemd's StateDirectory= keeps it so): `hipsense calibrate` may run
# before the service ever started.
run install -d -m 0700 -o hipsense -g hipsense /var/lib/hipsense

# 5. Check the config as the service user before enabling anything: errors name the setting.
run runuser -u hipsense -- "$PREFIX/venv/bin/python" -c \
  "from hipsense.service.config import load_config; load_config('$ETC/hipsense.toml')"

# 6. `hipsense` on the PATH: runs every command as the service user with the service's state
#    directory (a calibration lands where the service reads it); calibrate/record stop the
#    service while they use the sensor and start it again (deploy/pi/hipsense-wrapper.sh).
run install -m 0755 "$HERE/hipsense-wrapper.sh" "$WRAPPER"

# 7. The unit.
run install -m 0644 "$HERE/hipsense.service" "$UNIT"
run systemctl daemon-reload
run systemctl enable --now hipsense.service
echo "hipsense installed. Follow it with: journalctl -fu hipsense -o cat"
echo "Find and calibrate the sensor once, strapped on (the service pauses meanwhile):"
echo "  sudo hipsense scan"
echo "  sudo hipsense calibrate --side right"
page="http://$(hostname).local:8080/"
echo "The patient's page (pain, today's plan, skip a day), from a phone on the home network: $page"
if command -v qrencode >/dev/null 2>&1; then qrencode -t ANSIUTF8 "$page"; fi
