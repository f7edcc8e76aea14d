/* C reference of the mock fire → handler path (see delivery_baseline.h). */
#include "delivery_baseline.h"

#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A futex word holding the owner's thread id, as Synchronization.Mutex keeps it. */
typedef struct { uint32_t word; } db_lock;

static __thread uint32_t db_tid;

static inline uint32_t db_self(void) {
    if (db_tid == 0) db_tid = (uint32_t)syscall(SYS_gettid);
    return db_tid;
}

static void db_lock_slow(db_lock *l) {
    while (syscall(SYS_futex, &l->word, FUTEX_LOCK_PI_PRIVATE, 0, NULL) != 0) {}
}

static void db_unlock_slow(db_lock *l) { syscall(SYS_futex, &l->word, FUTEX_UNLOCK_PI_PRIVATE); }

static inline void db_acquire(db_lock *l) {
    uint32_t expected = 0;
    if (!__atomic_compare_exchange_n(&l->word, &expected, db_self(), 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        db_lock_slow(l);
}

static inline void db_release(db_lock *l) {
    uint32_t expected = db_self();
    if (!__atomic_compare_exchange_n(&l->word, &expected, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        db_unlock_slow(l);
}

typedef struct { uint32_t address_lo, address_hi, data, control; } db_entry;

struct db_device {
    db_lock lock;
    uint16_t msix_control; /* bit 15 Enable, bit 14 Function Mask */
    uint32_t entries;
    db_entry *table;
    uint64_t *pba;
    db_platform *platform;
};

struct db_platform {
    db_lock lock;
    int cpus;
    int16_t apic_to_cpu[256];
    uint64_t online;
    uint32_t *routes; /* cpu << 8 | vector → virq, 0 = none */
    uint8_t *requested;
    db_handler *handlers;
    void **contexts;
    uint64_t *counts; /* virq * cpus + cpu */
    uint32_t *in_flight; /* handlers running outside the lock, per virq (what free_irq waits for) */
    int max_irqs;
};

db_platform *db_platform_create(int cpus) {
    if (cpus < 1 || cpus > 64) return NULL;
    db_platform *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->cpus = cpus;
    p->max_irqs = 1024;
    for (int i = 0; i < 256; i++) p->apic_to_cpu[i] = i < cpus ? (int16_t)i : -1;
    p->online = cpus == 64 ? ~0ull : (1ull << cpus) - 1;
    p->routes = calloc((size_t)cpus << 8, sizeof(uint32_t));
    p->requested = calloc((size_t)p->max_irqs, 1);
    p->handlers = calloc((size_t)p->max_irqs, sizeof(db_handler));
    p->contexts = calloc((size_t)p->max_irqs, sizeof(void *));
    p->counts = calloc((size_t)p->max_irqs * (size_t)cpus, sizeof(uint64_t));
    p->in_flight = calloc((size_t)p->max_irqs, sizeof(uint32_t));
    if (!p->routes || !p->requested || !p->handlers || !p->contexts || !p->counts || !p->in_flight) {
        db_platform_destroy(p);
        return NULL;
    }
    return p;
}

void db_platform_destroy(db_platform *p) {
    if (!p) return;
    free(p->routes);
    free(p->requested);
    free(p->handlers);
    free(p->contexts);
    free(p->counts);
    free(p->in_flight);
    free(p);
}

int db_platform_route(db_platform *p, int cpu, int vector, int virq, db_handler handler, void *context) {
    if (cpu < 0 || cpu >= p->cpus || vector < 0x20 || vector > 0xff || virq <= 0 || virq >= p->max_irqs) return -1;
    db_acquire(&p->lock);
    p->routes[(cpu << 8) | vector] = (uint32_t)virq;
    p->requested[virq] = 1;
    p->handlers[virq] = handler;
    p->contexts[virq] = context;
    db_release(&p->lock);
    return 0;
}

db_device *db_device_create(db_platform *platform, uint32_t entries) {
    db_device *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->entries = entries;
    d->table = calloc(entries ? entries : 1, sizeof(db_entry));
    d->pba = calloc((entries + 63) / 64 + 1, sizeof(uint64_t));
    d->platform = platform;
    if (!d->table || !d->pba) {
        db_device_destroy(d);
        return NULL;
    }
    for (uint32_t i = 0; i < entries; i++) d->table[i].control = 1;
    return d;
}

void db_device_destroy(db_device *d) {
    if (!d) return;
    free(d->table);
    free(d->pba);
    free(d);
}

void db_device_program(db_device *d, uint32_t index, uint32_t lo, uint32_t hi, uint32_t data) {
    if (index >= d->entries) return;
    db_acquire(&d->lock);
    d->table[index] = (db_entry){lo, hi, data, 0};
    d->msix_control |= 0x8000;
    db_release(&d->lock);
}

/* The platform's receiving end: decode, then vector → irq → count → handler. */
static int db_deliver(db_platform *p, uint32_t lo, uint32_t hi, uint32_t data, int *out_virq, int *out_cpu,
                      int *out_vector) {
    if (hi != 0 || (lo & 0xFFF00000u) != 0xFEE00000u) return DB_DROPPED;
    if (lo & (1u << 4)) return DB_DROPPED; /* remappable format: no remapping here */
    uint32_t mode = (data >> 8) & 7;
    if (mode > 1) return DB_DROPPED;
    int vector = (int)(data & 0xFF);
    uint32_t dest = (lo >> 12) & 0xFF;
    int cpu;
    if (lo & (1u << 2)) { /* logical (flat): one bit per CPU */
        if (dest == 0) return DB_DROPPED;
        cpu = __builtin_ctz(dest);
        if (cpu >= p->cpus) return DB_DROPPED;
    } else {
        cpu = p->apic_to_cpu[dest];
        if (cpu < 0) return DB_DROPPED;
    }
    db_acquire(&p->lock);
    if (!(p->online & (1ull << cpu)) || vector < 0x20) {
        db_release(&p->lock);
        return DB_DROPPED;
    }
    uint32_t virq = p->routes[((uint32_t)cpu << 8) | (uint32_t)vector];
    if (virq == 0 || !p->requested[virq]) {
        db_release(&p->lock);
        return DB_DROPPED;
    }
    p->counts[virq * (uint32_t)p->cpus + (uint32_t)cpu]++;
    db_handler handler = p->handlers[virq];
    void *context = p->contexts[virq];
    if (handler) __atomic_fetch_add(&p->in_flight[virq], 1, __ATOMIC_RELAXED);
    db_release(&p->lock);
    if (handler) {
        handler((int)virq, context);
        __atomic_fetch_sub(&p->in_flight[virq], 1, __ATOMIC_RELEASE);
    }
    *out_virq = (int)virq;
    *out_cpu = cpu;
    *out_vector = vector;
    return DB_DELIVERED;
}

int db_fire_msix(db_device *d, uint32_t index, int *virq, int *cpu, int *vector) {
    db_acquire(&d->lock);
    if (index >= d->entries) {
        db_release(&d->lock);
        return DB_DROPPED;
    }
    const db_entry *e = &d->table[index];
    uint16_t control = d->msix_control;
    if (!(control & 0x8000) || (control & 0x4000) || (e->control & 1)) {
        d->pba[index >> 6] |= 1ull << (index & 63);
        db_release(&d->lock);
        return DB_PENDING;
    }
    uint32_t lo = e->address_lo, hi = e->address_hi, data = e->data;
    db_platform *p = d->platform;
    db_release(&d->lock);
    return db_deliver(p, lo, hi, data, virq, cpu, vector);
}

void db_count_handler(int virq, void *context) {
    (void)virq;
    __atomic_fetch_add((uint64_t *)context, 1, __ATOMIC_RELAXED);
}

uint64_t db_fire_loop(db_device *d, uint32_t index, size_t n) {
    uint64_t delivered = 0;
    for (size_t k = 0; k < n; k++) {
        int virq, cpu, vector;
        if (db_fire_msix(d, index, &virq, &cpu, &vector) == DB_DELIVERED) delivered++;
    }
    return delivered;
}
