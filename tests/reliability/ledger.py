"""The reliability ledger: every scenario records the faults it injected and what survived.

``conftest.pytest_terminal_summary`` prints it as one table at the end of the session, so a CI
log shows at a glance how many faults were thrown at the pipeline and whether any data was lost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass
class Entry:
    category: str
    scenario: str
    injected: int
    survived: bool
    lost: int  # committed patches missing or changed afterwards (0 = nothing lost)


class Ledger:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def record(self, category: str, scenario: str, *, injected: int, survived: bool, lost: int = 0) -> None:
        self.entries.append(Entry(category, scenario, int(injected), bool(survived), int(lost)))

    def table(self) -> list[str]:
        """Rows per category: scenarios, faults injected, scenarios survived, patches lost."""
        agg: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for e in self.entries:
            a = agg[e.category]
            a[0] += 1
            a[1] += e.injected
            a[2] += e.survived
            a[3] += e.lost
        head = f"{'category':<14}{'scenarios':>10}{'faults injected':>17}{'survived':>10}{'data lost':>11}"
        rows = [head, "-" * len(head)]
        total = [0, 0, 0, 0]
        for cat in sorted(agg):
            a = agg[cat]
            total = [t + v for t, v in zip(total, a)]
            rows.append(f"{cat:<14}{a[0]:>10}{a[1]:>17}{a[2]:>10}{a[3]:>11}")
        rows.append("-" * len(head))
        rows.append(f"{'total':<14}{total[0]:>10}{total[1]:>17}{total[2]:>10}{total[3]:>11}")
        return rows


LEDGER = Ledger()
