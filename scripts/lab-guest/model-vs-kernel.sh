# Scenario model-vs-kernel (6 CPUs in NUMA nodes 0-3 and 4-5, no interrupt remapping, iomem=relaxed):
# the real nvme and e1000e drivers bind, one device at a time; msilab replays each driver's calls
# through the model on a mock built from the device's config space and compares every vector.
. /lab/lib.sh
nvme0=0000:02:00.0     # nvme, 64 queue pairs: one I/O queue per CPU
nvme1=0000:00:06.0     # nvme, max_ioqpairs=3: fewer queues than CPUs, CPUs grouped
nic=0000:00:02.0       # e1000e
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
# Only the devices compared get a driver, and one at a time (nvme probes asynchronously).
for d in 0000:01:00.0 0000:02:00.1 $nvme1; do echo none > /sys/bus/pci/devices/$d/driver_override; done
cp /sys/kernel/tracing/trace /tmp/trace.before
queues_up() { dmesg | grep -q "$1: .*default/read/poll queues"; }
load_modules nvme
wait_for nvme0-queues 30 queues_up nvme0
echo > /sys/bus/pci/devices/$nvme1/driver_override
echo $nvme1 > /sys/bus/pci/drivers_probe
wait_for nvme1-queues 30 queues_up nvme1
load_modules e1000e
wait_for e1000e-netdev 30 ls /sys/bus/pci/devices/$nic/net/
ip link set "$(ls /sys/bus/pci/devices/$nic/net/)" up
wait_for e1000e-irqs-requested 30 grep -q -- "-rx-0" /proc/interrupts
dmesg | grep -E "default/read/poll|e1000e.*(MSI|Interrupt)" | sed 's/^/@@INFO dmesg: /'
msilab model-vs-kernel /tmp/trace.before "nvme/64@$nvme0,nvme/3@$nvme1,e1000e@$nic"
expect_eq msilab-model-vs-kernel-exit 0 $?
