#!/bin/sh
# /usr/local/bin/hipsense on the Pi, installed by deploy/pi/install.sh.
#
# Every hipsense command runs as the service's user, with the service's configuration and its
# state directory, so what `hipsense calibrate` learns lands where the service reads it (as the
# login user it would land in that user's home, where the service never looks).
#
# `calibrate` and `record` need the sensor, which the running service is connected to: the
# service is stopped first and started again afterwards, also after an error or Ctrl-C.
#
#   sudo hipsense scan
#   sudo hipsense calibrate --side right
set -eu

HIPSENSE_BIN=/opt/hipsense/venv/bin/hipsense
SERVICE=hipsense
SERVICE_USER=hipsense
STATE_DIR=/var/lib/hipsense
CONFIG=/etc/hipsense/hipsense.toml

if [ "$(id -u)" -ne 0 ] && [ "$(id -un)" != "$SERVICE_USER" ]; then
  # sudo resets the environment: nothing of the caller's reaches the service user's run
  exec sudo -- "$0" "$@"
fi

as_service_user() {
  if [ "$(id -un)" = "$SERVICE_USER" ]; then
    env HIPSENSE_CONFIG="$CONFIG" HIPSENSE_CONFIG_DIR="$STATE_DIR" "$HIPSENSE_BIN" "$@"
  else
    runuser -u "$SERVICE_USER" -- env HIPSENSE_CONFIG="$CONFIG" HIPSENSE_CONFIG_DIR="$STATE_DIR" \
      "$HIPSENSE_BIN" "$@"
  fi
}

restart_service() {
  trap - EXIT
  echo "hipsense: starting the service again" >&2
  systemctl start "$SERVICE"
}

case "${1:-}" in
  calibrate|record)
    if [ "$(id -u)" -eq 0 ] && systemctl is-active --quiet "$SERVICE"; then
      echo "hipsense: stopping the service while $1 uses the sensor" >&2
      systemctl stop "$SERVICE"
      trap restart_service EXIT
      trap 'exit 130' INT
      trap 'exit 143' TERM HUP
    fi
    status=0
    as_service_user "$@" || status=$?
    exit "$status"
    ;;
  *)
    as_service_user "$@"
    ;;
esac
