"""Run every benchmark: ``python -m tests.benchmarks``. Each prints its figures."""

from tests.benchmarks import (
    bench_catalog,
    bench_fleet,
    bench_hostile,
    bench_jobs,
    bench_service,
    bench_sync,
)

if __name__ == "__main__":
    bench_catalog.main()
    print()
    bench_sync.main()
    print()
    bench_fleet.main()
    print()
    bench_service.main()
    print()
    bench_jobs.main()
    print()
    bench_hostile.main()
