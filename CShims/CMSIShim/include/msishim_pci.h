#ifndef MSISHIM_PCI_H
#define MSISHIM_PCI_H
#include <stddef.h>
#include <pci/pci.h>

/*
 * libpci declares its error callback as "write error message and quit" and its own code
 * relies on it never returning. These wrappers arm a thread-local jump target around the
 * libpci call; the installed error callback formats the message into the caller's buffer
 * and jumps back, so the wrapper returns -1 with the message instead of exiting.
 * After a -1 the pci_access is poisoned: clean it up, do not reuse it.
 *
 * Warnings are never printed: they are appended (newline-separated) to a thread-local
 * buffer that msishim_pci_take_warnings() drains.
 */

/* Installs the error/warning/debug callbacks on a freshly allocated access. */
void msishim_pci_install_handlers(struct pci_access *acc);

int msishim_pci_init(struct pci_access *acc, char *err, size_t errlen);
int msishim_pci_scan_bus(struct pci_access *acc, char *err, size_t errlen);
/* Returns -1 on error, else stores pci_fill_info's known_fields in *known and returns 0. */
int msishim_pci_fill_info(struct pci_dev *dev, int flags, int *known, char *err, size_t errlen);
/* Returns -1 on error, else pci_read_block's result (1 = read, 0 = not readable). */
int msishim_pci_read_block(struct pci_dev *dev, int pos, unsigned char *buf, int len, char *err, size_t errlen);
/* Returns -1 on error, else pci_write_block's result. */
int msishim_pci_write_block(struct pci_dev *dev, int pos, unsigned char *buf, int len, char *err, size_t errlen);
int msishim_pci_set_param(struct pci_access *acc, const char *param, const char *value, char *err, size_t errlen);

/*
 * Guarded pci_lookup_name() with a fixed argument list: `a1`..`a4` are passed through as the
 * variadic ID arguments `flags` asks for (unused ones are ignored by libpci). Returns -1 on
 * error (message in err), else 0 and stores the result (NULL when unknown with
 * PCI_LOOKUP_NO_NUMBERS) in *out.
 */
int msishim_pci_lookup(struct pci_access *acc, char *buf, int size, int flags, int a1, int a2, int a3, int a4,
                       const char **out, char *err, size_t errlen);

/* Copies (and clears) the collected warnings; returns the number of bytes written. */
size_t msishim_pci_take_warnings(char *buf, size_t len);

#endif
