#!/bin/sh
# A fresh machine to a running one-node Shoal cluster (`shoal dev`) with a
# demo service: busybox httpd, 3 replicas, each answering curl. Builds the
# release binary, imports a busybox-static root filesystem into a scratch
# image store (as a developer's machine holds it), starts
# `shoal dev --data /tmp/shoal-dev` in the background, pushes the image to
# the registry shoal dev serves on 127.0.0.1:5000 ($SHOAL_DEMO_REGISTRY_PORT),
# creates the service from it (the agent pulls it), waits for 3/3 running
# (healthy), curls every replica, shows `service logs`, then removes the
# service and stops the daemon it started.
#
# Every replica runs on the node bridge (shoal0) with its own address, and
# its httpd listens on container port 80. `--publish mode=host,target=80`
# leaves the published port out, so each task gets a free host port of its
# own on 127.0.0.1 (Swarm's mode=host: a fixed published port can be held
# by one task per node, so on this one node it would run one replica);
# `service ps` shows them in PORTS.
set -eu
cd "$(dirname "$0")/.."

DATA=${SHOAL_DEMO_DATA:-/tmp/shoal-dev}
REGISTRY_PORT=${SHOAL_DEMO_REGISTRY_PORT:-5000}
IMAGE="127.0.0.1:$REGISTRY_PORT/busybox:latest"
SOCKET="$DATA/shoal.sock"
export SHOAL_HOST="unix://$SOCKET"

echo "dev-demo: building shoal and shoal-monitor (release)"
# SHOAL_SCRATCH_PATH: build somewhere else than .build (a tree shared with other builds).
set -- ${SHOAL_SCRATCH_PATH:+--scratch-path "$SHOAL_SCRATCH_PATH"}
# shoal-monitor sits beside shoal: it holds each container's exit status while the daemon is down.
if ! { swift build -c release --product shoal "$@" && swift build -c release --product shoal-monitor "$@"; } > /tmp/shoal-dev-demo-build.log 2>&1; then
    tail -n 40 /tmp/shoal-dev-demo-build.log >&2
    echo "dev-demo: the release build failed (log: /tmp/shoal-dev-demo-build.log)" >&2
    exit 1
fi
BIN="$(swift build -c release --show-bin-path "$@")/shoal"

mkdir -p "$DATA"
WORK=$(mktemp -d)
DEV_PID=""
cleanup() {
    status=$?
    if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
        "$BIN" service rm web >/dev/null 2>&1 || true
        # The agent deletes the containers once their tasks are removed.
        for _ in $(seq 1 100); do
            ls "$DATA/containers/containers" 2>/dev/null | grep -q '^task-' || break
            sleep 0.2
        done
        kill "$DEV_PID" 2>/dev/null || true
        wait "$DEV_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    if [ "$status" -ne 0 ]; then
        echo "dev-demo: failed; the daemon's log:" >&2
        tail -n 30 "$DATA/dev.log" >&2 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT INT TERM

echo "dev-demo: building a busybox-static root filesystem"
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/root" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev" "$ROOTFS/www"
cp /bin/busybox "$ROOTFS/bin/busybox"
chroot "$ROOTFS" /bin/busybox --install -s /bin
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOTFS/etc/group"
tar -C "$ROOTFS" -cf "$WORK/busybox.tar" .
"$BIN" image import "$WORK/busybox.tar" busybox:latest --data "$WORK/developer"

echo "dev-demo: starting shoal dev --data $DATA --default-publish-address 127.0.0.1 (log: $DATA/dev.log)"
"$BIN" dev --data "$DATA" --host "$SHOAL_HOST" --registry-port "$REGISTRY_PORT" --default-publish-address 127.0.0.1 > "$DATA/dev.log" 2>&1 &
DEV_PID=$!
for _ in $(seq 1 100); do
    [ -S "$SOCKET" ] && "$BIN" service ls >/dev/null 2>&1 && break
    kill -0 "$DEV_PID" 2>/dev/null || { echo "dev-demo: shoal dev exited" >&2; exit 1; }
    sleep 0.2
done
"$BIN" service rm web >/dev/null 2>&1 && sleep 2 || true

echo "dev-demo: shoal image push busybox:latest $IMAGE"
"$BIN" image push busybox:latest "$IMAGE" --data "$WORK/developer"

echo "dev-demo: shoal service create --name web --replicas 3 --publish mode=host,target=80 --health-cmd 'wget -q -O /dev/null http://127.0.0.1/' $IMAGE sh -c '... httpd -p 80 ...'"
START=$(date +%s%N)
"$BIN" service create --name web --replicas 3 --stop-grace-period 1s --publish mode=host,target=80 \
    --health-cmd 'wget -q -O /dev/null http://127.0.0.1/' --health-interval 500ms --health-retries 3 "$IMAGE" \
    sh -c 'mkdir -p /www && echo "hello from web.$SHOAL_TASK_SLOT (task $SHOAL_TASK_ID)" > /www/index.html && echo "web.$SHOAL_TASK_SLOT serving on port 80" && exec httpd -f -v -p 80 -h /www'
END=$(date +%s%N)
echo "dev-demo: 3/3 running (healthy) after $(( (END - START) / 1000000 )) ms"
"$BIN" service ps web

# The host ports the tasks got: "127.0.0.1:41234->80/tcp" (or "*:41234->80/tcp") in the PORTS column.
PORTS=$("$BIN" service ps web | grep ' Running ' | grep -o '[0-9.*]*:[0-9]*->80/tcp' | sed 's/^.*:\([0-9]*\)->.*/\1/')
[ "$(echo "$PORTS" | grep -c .)" -eq 3 ] || { echo "dev-demo: expected 3 published ports, got: $PORTS" >&2; exit 1; }
for port in $PORTS; do
    answer=""
    for _ in $(seq 1 50); do
        answer=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null) && break
        sleep 0.1
    done
    [ -n "$answer" ] || { echo "dev-demo: nothing answers on 127.0.0.1:$port" >&2; exit 1; }
    echo "curl http://127.0.0.1:$port/ -> $answer"
done
echo "dev-demo: shoal service logs web"
"$BIN" service logs web
echo "dev-demo: ok; removing the service and stopping shoal dev"
