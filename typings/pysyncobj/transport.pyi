from collections.abc import Callable

monotonicTime: Callable[[], float]
