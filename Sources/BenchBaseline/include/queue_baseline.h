#ifndef QUEUE_BASELINE_H
#define QUEUE_BASELINE_H
/* C baseline for the work-queue rows of `msibench model`: the bookkeeping a queue create and
 * free does, in flat C arrays, as a kernel would keep it: queue table (lowest free number),
 * IMS descriptor store (lowest free index, instance cookie), Linux irq numbers (bitmap),
 * irq records with their per-CPU counters zeroed, the irqaction request_irq allocates and
 * free_irq frees, the x86 vector matrix (global reservation at allocation, best CPU and lowest
 * free vector at request_irq, release at free), the vector-to-irq routes, and the IMS slot
 * writes (mask, message, unmask with the PASID; shutdown, zero message). With `locking`, the
 * locks the kernel takes on this path are taken too (pthread mutexes): the queue table's,
 * msi_lock_descs, sparse_irq_lock, vector_lock, and the irq's request_mutex and desc->lock. */
#include <stdint.h>

typedef struct qb_device qb_device;

/* A device with an IMS array of `slots` slots (in plain memory) on `cpus` CPUs (<= 64);
 * `locking` 1 takes the kernel's locks, 0 none. */
qb_device *qb_create(uint32_t slots, uint32_t cpus, int locking);
void qb_destroy(qb_device *dev);
/* Creates a queue for `consumer` (0 kernel, 1 vfio, 2 cdev) with `pasid` (0: none): returns
 * the queue number, -22 (EINVAL) for a bad PASID, -28 (ENOSPC) when nothing is left. */
int qb_queue_create(qb_device *dev, int consumer, uint32_t pasid);
/* Frees queue `q` for `consumer`: 0, -2 (ENOENT) or -1 (EPERM). */
int qb_queue_free(qb_device *dev, int q, int consumer);
/* The Linux irq of queue `q`, 0 when none. */
uint32_t qb_queue_irq(const qb_device *dev, int q);
#endif
