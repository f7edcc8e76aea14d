/*
 * libFuzzer's entry for programs that keep their own main (LLVMFuzzerRunDriver, in
 * libclang_rt.fuzzer since LLVM 11). Only msifuzz's fuzzing build calls it; nothing defines
 * it in other builds, and nothing references it there.
 */
#ifndef MSISHIM_FUZZ_H
#define MSISHIM_FUZZ_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
