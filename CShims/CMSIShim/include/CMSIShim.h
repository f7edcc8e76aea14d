/*
 * CMSIShim: the few things Swift cannot express directly. No logic lives here.
 *   msishim_pci.h   libpci calls guarded so libpci's "fatal" error callback returns to Swift
 *                   instead of exiting the process; fixed-argument wrappers for variadic calls.
 *   msishim_mmio.h  volatile, barriered 32/64-bit MMIO loads and stores (static inline).
 *   msishim_sys.h   ioctl request numbers and small syscall wrappers (VFIO, eventfd, ...).
 *   msishim_fuzz.h  the declaration of libFuzzer's driver entry (msifuzz's fuzzing build).
 */
#ifndef CMSISHIM_H
#define CMSISHIM_H
#include "msishim_pci.h"
#include "msishim_mmio.h"
#include "msishim_sys.h"
#include "msishim_fuzz.h"
#endif
