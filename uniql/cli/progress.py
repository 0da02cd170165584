"""Progress display for pipeline stages: a tqdm bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

logger = logging.getLogger(__name__)


class StageProgress:
    """Feed the pipeline's progress events to one bar per stage, or to a log line every 10 %."""

    def __init__(self, interactive: bool | None = None):
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.bar: tqdm | None = None
        self.stage: str | None = None
        self.logged_tenth = -1

    def __call__(self, event) -> None:
        if event.stage != self.stage:
            self.close()
            self.stage = event.stage
            self.logged_tenth = -1
            if self.interactive:
                self.bar = tqdm(total=100, desc=f"{event.stage:>9}", unit="%", file=sys.stderr, leave=True)
        if self.bar is not None:
            self.bar.n = round(event.fraction * 100)
            self.bar.set_postfix_str(event.message[:60])
            self.bar.refresh()
            return
        tenth = int(event.fraction * 10)
        if tenth > self.logged_tenth:
            self.logged_tenth = tenth
            logger.info("%s %3d%%: %s", event.stage, round(event.fraction * 100), event.message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
