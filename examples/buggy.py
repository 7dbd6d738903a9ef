"""A small file with a bug, for spark-ls's quick start: `spark-ls check examples/buggy.py`."""


def average(numbers):
    """Return the arithmetic mean of a non-empty list of numbers."""
    total = 0
    for i in range(len(numbers) - 1):
        total += numbers[i]
    return total / len(numbers)
