"""Progress bars on stderr for pipeline stages."""

from __future__ import annotations

import sys

from tqdm import tqdm


class StageProgress:
    """One tqdm bar per stage, fed by the pipeline's progress events."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty() or enabled == "always"
        self.bar: tqdm | None = None
        self.stage: str | None = None

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if event.stage != self.stage:
            self.close()
            self.stage = event.stage
            self.bar = tqdm(total=100, desc=f"{event.stage:>9}", unit="%", file=sys.stderr, leave=True)
        assert self.bar is not None
        self.bar.n = round(event.fraction * 100)
        self.bar.set_postfix_str(event.message[:60])
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
