/* C baseline for the work-queue rows of `msibench model` (see queue_baseline.h). */
#include "queue_baseline.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { FIRST_VECTOR = 0x20, END_VECTOR = 0xEC, SHUTDOWN_VECTOR = 0xEF, FIRST_IRQ = 24, MAX_IRQS = 16384 };
enum { SLOT_MASK = 1u << 0, SLOT_PASID_EN = 1u << 3, PASID_SHIFT = 12 };

typedef struct qb_desc {
    uint32_t present, irq;
    uint64_t icookie, dcookie;
    uint32_t address_lo, address_hi, data;
} qb_desc;

/* struct irqaction: allocated by request_irq, freed by free_irq. */
typedef struct qb_action {
    void (*handler)(uint32_t);
    void *dev_id;
    uint32_t irq, flags;
} qb_action;

typedef struct qb_irq {
    uint32_t present, owner, hwirq, msi_index;
    qb_action *action;
    uint64_t affinity;
    uint8_t activated, started, masked, requested, has_reserved, can_reserve;
    uint8_t cpu, vector, cfg_cpu, cfg_vector;
    void (*handler)(uint32_t);
    pthread_mutex_t request_mutex, lock; /* desc->request_mutex, desc->lock */
} qb_irq;

typedef struct qb_cpu {
    int available, allocated;
    uint64_t alloc_map[4];
} qb_cpu;

typedef struct qb_queue {
    int present, consumer;
    uint32_t pasid, ims_index, irq;
} qb_queue;

struct qb_device {
    uint32_t nslots, ncpus;
    int locking;
    /* the kernel's locks on this path: wq lock, msi_lock_descs, sparse_irq_lock, vector_lock */
    pthread_mutex_t queue_lock, descs_lock, sparse_irq_lock, vector_lock;
    /* platform */
    qb_cpu cpus[64];
    int global_available, global_reserved, total_allocated;
    uint64_t irq_bitmap[MAX_IRQS / 64];
    uint32_t irq_hint;
    qb_irq *irqs;
    uint32_t *routes; /* cpu << 8 | vector -> irq */
    uint64_t *counts; /* kstat_irqs: per irq, one counter per CPU */
    /* IMS store and slots */
    qb_desc *descs;
    uint32_t desc_hint;
    volatile uint32_t *slots;
    /* queues */
    qb_queue *queues;
    uint32_t queue_hint, nqueues_max;
};

static void noop_handler(uint32_t irq) { (void)irq; }

static inline void lock(qb_device *d, pthread_mutex_t *m) { if (d->locking) pthread_mutex_lock(m); }
static inline void unlock(qb_device *d, pthread_mutex_t *m) { if (d->locking) pthread_mutex_unlock(m); }

qb_device *qb_create(uint32_t slots, uint32_t cpus, int locking) {
    if (cpus == 0 || cpus > 64) return NULL;
    qb_device *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->locking = locking;
    pthread_mutex_init(&d->queue_lock, NULL);
    pthread_mutex_init(&d->descs_lock, NULL);
    pthread_mutex_init(&d->sparse_irq_lock, NULL);
    pthread_mutex_init(&d->vector_lock, NULL);
    d->nslots = slots;
    d->ncpus = cpus;
    for (uint32_t c = 0; c < cpus; c++) {
        d->cpus[c].available = END_VECTOR - FIRST_VECTOR;
        d->global_available += d->cpus[c].available;
    }
    d->irq_hint = FIRST_IRQ;
    d->irqs = calloc(MAX_IRQS, sizeof(qb_irq));
    for (int i = 0; i < MAX_IRQS; i++) {
        pthread_mutex_init(&d->irqs[i].request_mutex, NULL);
        pthread_mutex_init(&d->irqs[i].lock, NULL);
    }
    d->routes = calloc((size_t)cpus * 256, sizeof(uint32_t));
    d->counts = calloc((size_t)MAX_IRQS * cpus, sizeof(uint64_t));
    d->descs = calloc(slots, sizeof(qb_desc));
    d->slots = calloc((size_t)slots * 4, sizeof(uint32_t));
    d->nqueues_max = slots + 2048;
    d->queues = calloc(d->nqueues_max, sizeof(qb_queue));
    for (uint32_t s = 0; s < slots; s++) d->slots[s * 4 + 3] = SLOT_MASK;
    return d;
}

void qb_destroy(qb_device *d) {
    if (!d) return;
    for (int i = 0; i < MAX_IRQS; i++) {
        pthread_mutex_destroy(&d->irqs[i].request_mutex);
        pthread_mutex_destroy(&d->irqs[i].lock);
    }
    pthread_mutex_destroy(&d->queue_lock);
    pthread_mutex_destroy(&d->descs_lock);
    pthread_mutex_destroy(&d->sparse_irq_lock);
    pthread_mutex_destroy(&d->vector_lock);
    free(d->irqs);
    free(d->routes);
    free(d->counts);
    free(d->descs);
    free((void *)d->slots);
    free(d->queues);
    free(d);
}

static int first_clear(const uint64_t *bits, int start, int end) {
    for (int i = start; i < end;) {
        uint64_t w = ~bits[i >> 6] & (~0ull << (i & 63));
        if (w) {
            int b = (i & ~63) + __builtin_ctzll(w);
            return b < end ? b : end;
        }
        i = (i & ~63) + 64;
    }
    return end;
}

/* irq_alloc_descs + x86_vector_alloc_irqs (global reservation, message at the shutdown vector). */
static int alloc_irq(qb_device *d, uint32_t index) {
    int irq = first_clear(d->irq_bitmap, (int)d->irq_hint, MAX_IRQS);
    if (irq >= MAX_IRQS) return -28;
    d->irq_bitmap[irq >> 6] |= 1ull << (irq & 63);
    if ((uint32_t)irq == d->irq_hint) d->irq_hint = (uint32_t)first_clear(d->irq_bitmap, irq, MAX_IRQS);
    qb_irq *r = &d->irqs[irq];
    memset(r, 0, offsetof(qb_irq, request_mutex));
    r->present = 1;
    r->owner = 1;
    r->hwirq = index;
    r->msi_index = index;
    r->affinity = d->ncpus == 64 ? ~0ull : (1ull << d->ncpus) - 1;
    r->masked = 1;
    r->can_reserve = 1;
    r->has_reserved = 1;
    r->cfg_vector = SHUTDOWN_VECTOR;
    d->global_reserved++;
    memset(&d->counts[(size_t)irq * d->ncpus], 0, d->ncpus * sizeof(uint64_t));
    return irq;
}

static void free_irq_number(qb_device *d, int irq) {
    qb_irq *r = &d->irqs[irq];
    if (r->has_reserved) d->global_reserved--;
    r->present = 0;
    d->irq_bitmap[irq >> 6] &= ~(1ull << (irq & 63));
    if ((uint32_t)irq < d->irq_hint) d->irq_hint = (uint32_t)irq;
}

/* irq_matrix_alloc: the online CPU of the mask with the most available vectors, its lowest free vector. */
static int matrix_alloc(qb_device *d, uint64_t mask, int *cpu_out) {
    int best = -1, most = 0;
    for (uint32_t c = 0; c < d->ncpus; c++) {
        if (!(mask & (1ull << c)) || d->cpus[c].available <= most) continue;
        best = (int)c;
        most = d->cpus[c].available;
    }
    if (best < 0) return -28;
    qb_cpu *m = &d->cpus[best];
    int v = first_clear(m->alloc_map, FIRST_VECTOR, END_VECTOR);
    if (v >= END_VECTOR) return -28;
    m->alloc_map[v >> 6] |= 1ull << (v & 63);
    m->allocated++;
    m->available--;
    d->total_allocated++;
    d->global_available--;
    d->global_reserved--;
    *cpu_out = best;
    return v;
}

static void matrix_free(qb_device *d, int cpu, int v) {
    qb_cpu *m = &d->cpus[cpu];
    m->alloc_map[v >> 6] &= ~(1ull << (v & 63));
    m->allocated--;
    m->available++;
    d->total_allocated--;
    d->global_available++;
}

static void write_message(qb_device *d, uint32_t index, uint32_t lo, uint32_t hi, uint32_t data) {
    volatile uint32_t *s = &d->slots[index * 4];
    s[0] = lo;
    s[1] = hi;
    s[2] = data;
    qb_desc *desc = &d->descs[index];
    desc->address_lo = lo;
    desc->address_hi = hi;
    desc->data = data;
}

int qb_queue_create(qb_device *d, int consumer, uint32_t pasid) {
    if ((consumer != 0 && pasid == 0) || pasid > 0xFFFFF) return -22;
    lock(d, &d->queue_lock);
    /* msi_domain_alloc_irq_at under msi_lock_descs: descriptor at the lowest free IMS index */
    lock(d, &d->descs_lock);
    uint32_t index = d->desc_hint;
    while (index < d->nslots && d->descs[index].present) index++;
    if (index >= d->nslots) {
        unlock(d, &d->descs_lock);
        unlock(d, &d->queue_lock);
        return -28;
    }
    qb_desc *desc = &d->descs[index];
    memset(desc, 0, sizeof(*desc));
    desc->present = 1;
    desc->icookie = pasid;
    d->desc_hint = index + 1;
    /* prepare_desc: slot offset, mask */
    desc->dcookie = (uint64_t)index * 16;
    d->slots[index * 4 + 3] = SLOT_MASK;
    /* irq number (sparse_irq_lock), global vector reservation (vector_lock) */
    lock(d, &d->sparse_irq_lock);
    lock(d, &d->vector_lock);
    int irq = alloc_irq(d, index);
    unlock(d, &d->vector_lock);
    unlock(d, &d->sparse_irq_lock);
    if (irq < 0) {
        desc->present = 0;
        if (index < d->desc_hint) d->desc_hint = index;
        unlock(d, &d->descs_lock);
        unlock(d, &d->queue_lock);
        return irq;
    }
    desc->irq = (uint32_t)irq;
    unlock(d, &d->descs_lock);
    /* request_irq: request_mutex, desc->lock; activate (vector_lock: vector, compose, write),
     * handler, startup, unmask */
    qb_irq *r = &d->irqs[irq];
    lock(d, &r->request_mutex);
    lock(d, &r->lock);
    lock(d, &d->vector_lock);
    int cpu;
    int vector = matrix_alloc(d, r->affinity, &cpu);
    if (vector < 0) {
        unlock(d, &d->vector_lock);
        unlock(d, &r->lock);
        unlock(d, &r->request_mutex);
        lock(d, &d->descs_lock);
        free_irq_number(d, irq);
        desc->present = 0;
        if (index < d->desc_hint) d->desc_hint = index;
        unlock(d, &d->descs_lock);
        unlock(d, &d->queue_lock);
        return vector;
    }
    r->has_reserved = 0;
    r->cpu = r->cfg_cpu = (uint8_t)cpu;
    r->vector = r->cfg_vector = (uint8_t)vector;
    d->routes[(uint32_t)cpu << 8 | (uint32_t)vector] = (uint32_t)irq;
    unlock(d, &d->vector_lock);
    r->activated = 1;
    write_message(d, index, 0xFEE00000u | (uint32_t)cpu << 12, 0, (uint32_t)vector);
    r->requested = 1;
    r->handler = noop_handler;
    r->action = malloc(sizeof(qb_action));
    if (r->action) *r->action = (qb_action){.handler = noop_handler, .dev_id = d, .irq = (uint32_t)irq};
    r->started = 1;
    d->slots[index * 4 + 3] = pasid ? (pasid << PASID_SHIFT | SLOT_PASID_EN) : 0;
    r->masked = 0;
    unlock(d, &r->lock);
    unlock(d, &r->request_mutex);
    /* the queue */
    uint32_t q = d->queue_hint;
    while (q < d->nqueues_max && d->queues[q].present) q++;
    if (q >= d->nqueues_max) {
        unlock(d, &d->queue_lock);
        return -28;
    }
    d->queues[q] = (qb_queue){.present = 1, .consumer = consumer, .pasid = pasid, .ims_index = index, .irq = (uint32_t)irq};
    d->queue_hint = q + 1;
    unlock(d, &d->queue_lock);
    return (int)q;
}

int qb_queue_free(qb_device *d, int q, int consumer) {
    lock(d, &d->queue_lock);
    if (q < 0 || (uint32_t)q >= d->nqueues_max || !d->queues[q].present) {
        unlock(d, &d->queue_lock);
        return -2;
    }
    qb_queue *queue = &d->queues[q];
    if (queue->consumer != consumer) {
        unlock(d, &d->queue_lock);
        return -1;
    }
    uint32_t irq = queue->irq, index = queue->ims_index;
    qb_irq *r = &d->irqs[irq];
    /* free_irq: handler off, shutdown (mask, flush), deactivate (zero message; vector_lock:
     * vector back, re-reserve) */
    lock(d, &r->request_mutex);
    lock(d, &r->lock);
    r->requested = 0;
    r->handler = NULL;
    free(r->action);
    r->action = NULL;
    d->slots[index * 4 + 3] = SLOT_MASK;
    (void)d->slots[index * 4 + 3];
    r->masked = 1;
    r->started = 0;
    write_message(d, index, 0, 0, 0);
    lock(d, &d->vector_lock);
    d->routes[(uint32_t)r->cpu << 8 | r->vector] = 0;
    matrix_free(d, r->cpu, r->vector);
    r->vector = 0;
    r->has_reserved = 1;
    d->global_reserved++;
    r->cfg_vector = SHUTDOWN_VECTOR;
    unlock(d, &d->vector_lock);
    r->activated = 0;
    unlock(d, &r->lock);
    unlock(d, &r->request_mutex);
    /* pci_ims_free_irq under msi_lock_descs: reservation (vector_lock), irq number
     * (sparse_irq_lock), descriptor */
    lock(d, &d->descs_lock);
    lock(d, &d->sparse_irq_lock);
    lock(d, &d->vector_lock);
    free_irq_number(d, (int)irq);
    unlock(d, &d->vector_lock);
    unlock(d, &d->sparse_irq_lock);
    d->descs[index].present = 0;
    if (index < d->desc_hint) d->desc_hint = index;
    unlock(d, &d->descs_lock);
    queue->present = 0;
    if ((uint32_t)q < d->queue_hint) d->queue_hint = (uint32_t)q;
    unlock(d, &d->queue_lock);
    return 0;
}

uint32_t qb_queue_irq(const qb_device *d, int q) {
    if (q < 0 || (uint32_t)q >= d->nqueues_max || !d->queues[q].present) return 0;
    return d->queues[q].irq;
}
