# airlock test channel: runs what the host sends on the virtio-serial port
# airlock.test (present only when QEMU is started with it) and answers each
# command with "@@AIRLOCK-RESULT ID STATUS BASE64(OUTPUT)@@". It keeps
# reopening the port, so a host that connects late or reconnects is served.
#
# Started with "boot" (from kernel-command-line.service, which systemd's
# run generator makes for systemd.run=), it starts itself as a service and
# then the image's own default target: the generator made
# kernel-command-line.target the default, which pulls in nothing else.
if [ "$1" = boot ]; then
    systemd-run --unit=airlock-test-channel /bin/bash "$0"
    for dir in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
        target=$(readlink "$dir/default.target") && break
    done
    exec systemctl start --no-block "${target##*/}"
fi
port=/dev/virtio-ports/airlock.test
while :; do
    [ -e "$port" ] || { sleep 0.2; continue; }
    exec 3<>"$port"
    while IFS=' ' read -r id payload <&3; do
        [ -n "$id" ] || continue
        command=$(printf '%s' "$payload" | base64 -d)
        output=$(bash -c "$command" 2>&1 </dev/null)
        status=$?
        printf '@@AIRLOCK-RESULT %s %d %s@@\n' "$id" "$status" \
            "$(printf '%s' "$output" | base64 -w0)" >&3
    done
    exec 3<&-
    sleep 1
done
