#ifndef BENCH_BASELINE_H
#define BENCH_BASELINE_H
/* C baselines the Swift benchmarks (scripts/bench) compare against. */
#include "delivery_baseline.h"
#include "io_baseline.h"
#include "model_baseline.h"
#include "queue_baseline.h"
#endif
