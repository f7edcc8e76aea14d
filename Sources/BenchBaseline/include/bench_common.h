#ifndef BENCH_BASELINE_H
#define BENCH_BASELINE_H
/* C baselines the Swift benchmarks (scripts/bench) compare against. */
#endif
