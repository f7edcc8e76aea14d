// msibench: the benchmarks behind scripts/bench. Usage: msibench probe|model|io|tables [options]
print("usage: msibench probe|model|io|tables")
