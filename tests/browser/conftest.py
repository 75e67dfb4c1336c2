"""Browser tests start their worker with the multi-process tests' fixture."""

from tests.multiprocess.conftest import start_stack

__all__ = ["start_stack"]
