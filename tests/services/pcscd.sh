#!/bin/sh
# Start pcscd (with the vpcd virtual reader driver installed) unless it already runs.
set -eu
if pgrep -x pcscd >/dev/null 2>&1; then
    exit 0
fi
if [ ! -f /etc/reader.conf.d/vpcd ]; then
    echo "vsmartcard-vpcd is not installed: the virtual reader is missing" >&2
    exit 1
fi
# a daemon that was killed leaves its socket behind; without it we can tell when it is ready
rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
pcscd
for _ in $(seq 50); do
    [ -S /run/pcscd/pcscd.comm ] && exit 0
    sleep 0.1
done
echo "pcscd did not start" >&2
exit 1
