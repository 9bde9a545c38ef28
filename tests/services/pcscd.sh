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
pcscd
# wait until the daemon answers
for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ -S /run/pcscd/pcscd.comm ] && exit 0
    sleep 0.2
done
echo "pcscd did not start" >&2
exit 1
