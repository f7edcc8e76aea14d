# Helpers for lab scenarios (sourced). Output protocol, one line each, parsed by scripts/lab:
#   @@CHECK PASS|FAIL|SKIP name detail     a check and its outcome
#   @@INFO text                            context for a human reading the log
check() { echo "@@CHECK $1 $2 ${3:-}"; }
expect_eq() { # name expected actual
    if [ "$2" = "$3" ]; then check PASS "$1" "= $3"; else check FAIL "$1" "expected '$2', got '$3'"; fi
}
load_modules() { for m in "$@"; do modprobe "$m" 2>&1 | sed 's/^/@@INFO modprobe: /'; done; }
# bind BDF DRIVER: driver_override + drivers_probe, as driverctl does.
bind_to() {
    d=/sys/bus/pci/devices/$1
    [ -e "$d/driver" ] && echo "$1" > "$d/driver/unbind"
    echo "$2" > "$d/driver_override"
    echo "$1" > /sys/bus/pci/drivers_probe
}
driver_of() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null; }
