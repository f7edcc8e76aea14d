#ifndef MSISHIM_SYS_H
#define MSISHIM_SYS_H
/* ioctl request numbers and syscall wrappers Swift cannot import (macros). Filled in by the
 * device-I/O layer. */
#endif
