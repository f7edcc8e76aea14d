# Helpers for lab scenarios (sourced). Output protocol, one line each, parsed by scripts/lab:
#   @@CHECK PASS|FAIL|SKIP name detail     a check and its outcome
#   @@INFO text                            context for a human reading the log
check() { echo "@@CHECK $1 $2 ${3:-}"; }
info() { echo "$*" | sed 's/^/@@INFO /'; }
expect_eq() { # name expected actual
    if [ "$2" = "$3" ]; then check PASS "$1" "= $3"; else check FAIL "$1" "expected '$2', got '$3'"; fi
}
# expect_rc NAME EXPECTED_STATUS CMD ARGS...: runs the command, shows its output, checks its exit status.
# The output is kept in $out for further checks.
expect_rc() {
    name=$1 want=$2; shift 2
    out=$("$@" 2>&1); rc=$?
    info "\$ $*"
    [ -n "$out" ] && info "$out"
    if [ "$rc" = "$want" ]; then check PASS "$name" "exit status $rc"; else check FAIL "$name" "exit status $rc, expected $want"; fi
}
# expect_match NAME PATTERN TEXT: PASS when TEXT contains PATTERN (grep -E).
expect_match() {
    if printf '%s' "$3" | grep -qE -- "$2"; then check PASS "$1" "output matches /$2/"; else check FAIL "$1" "output does not match /$2/"; fi
}
# wait_for NAME SECONDS COMMAND...: polls COMMAND every 0.1 s; PASS when it succeeds, FAIL after SECONDS.
wait_for() {
    name=$1 secs=$2; shift 2; i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -ge $((secs * 10)) ] && { check FAIL "$name" "not within ${secs}s: $*"; return 1; }
        sleep 0.1
    done
    check PASS "$name" "$*"
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
msi_count() { ls "/sys/bus/pci/devices/$1/msi_irqs" 2>/dev/null | wc -l; }
