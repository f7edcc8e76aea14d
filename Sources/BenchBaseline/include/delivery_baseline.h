#ifndef DELIVERY_BASELINE_H
#define DELIVERY_BASELINE_H
/* C reference for `msibench tables`: the mock-fire → handler path written the way a C program
 * would, with the same steps and the same locking shape as the Swift path. A device (MSI-X
 * table, PBA, Message Control) behind its lock: bounds check, effective mask (!Enable ||
 * Function Mask || entry Mask), pending bit when masked, the entry's message copied out; then
 * the platform: x86 compatibility-format decode (address window, delivery mode, physical or
 * logical destination, APIC ID → CPU), and under the platform's lock the online check, the
 * per-CPU vector table → irq, the requested check and the per-CPU count; the handler (a
 * function pointer) runs after the lock is dropped, inside an in-flight count (what lets
 * free_irq know when the handler may go, the kernel's synchronize_irq). Both locks are a futex word taken with one
 * compare-and-swap and released with another, as Synchronization.Mutex does on Linux, so the
 * comparison is of the path, not of two lock libraries. */
#include <stddef.h>
#include <stdint.h>

typedef struct db_device db_device;
typedef struct db_platform db_platform;
typedef void (*db_handler)(int virq, void *context);

enum { DB_DELIVERED = 0, DB_PENDING = 1, DB_DROPPED = 2 };

/* A platform of `cpus` CPUs (APIC ID = CPU number, physical destination mode, all online). */
db_platform *db_platform_create(int cpus);
void db_platform_destroy(db_platform *platform);
/* Routes (cpu, vector) to `virq`, marks it requested and installs `handler`. */
int db_platform_route(db_platform *platform, int cpu, int vector, int virq, db_handler handler, void *context);

/* A device with an MSI-X table of `entries` entries (reset state: every entry masked). */
db_device *db_device_create(db_platform *platform, uint32_t entries);
void db_device_destroy(db_device *device);
/* Programs entry `index` and unmasks it; sets Enable in Message Control. */
void db_device_program(db_device *device, uint32_t index, uint32_t address_lo, uint32_t address_hi, uint32_t data);

/* The device raises MSI-X vector `index`: DB_DELIVERED (and *virq, *cpu, *vector set),
 * DB_PENDING or DB_DROPPED. */
int db_fire_msix(db_device *device, uint32_t index, int *virq, int *cpu, int *vector);
/* A handler that adds 1 to the uint64_t at `context` with a relaxed atomic add (what the
 * Swift benchmark's handler does). */
void db_count_handler(int virq, void *context);
/* `n` fires of `index`; returns how many were delivered. */
uint64_t db_fire_loop(db_device *device, uint32_t index, size_t n);
#endif
