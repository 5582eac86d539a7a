"""``python -m edigw.cli``, as the tests and benchmarks start the gateway."""

from edigw.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
