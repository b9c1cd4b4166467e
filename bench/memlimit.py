"""Memory limits for benchmark children: each job runs in its own memory cgroup (v2 or v1), so a
job that outgrows the limit is killed alone (the machine has no swap; without a limit the OOM
killer may take anything) and the group's peak charge (its own memory and the file pages it read
first; pages already cached stay charged to whoever read them) is read back.

    group = MemoryGroup.create(limit_bytes)       # None when no writable cgroup exists
    subprocess.Popen(cmd, preexec_fn=group.join_self if group else None)
    ... wait ...
    group.peak_bytes(), group.oom_killed(); group.remove()

Standard library only; the project's scripts use this, not ../shared/tools/memcap.
"""
from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

_COUNTER = itertools.count()


class MemoryGroup:
    """One memory cgroup with a hard limit (memory.max / memory.limit_in_bytes)."""

    def __init__(self, path: Path, version: int, limit: int):
        self.path, self.version, self.limit = path, version, limit

    @staticmethod
    def create(limit: int) -> "MemoryGroup | None":
        """A new group limited to `limit` bytes, or None when this machine offers no writable
        memory cgroup (the caller then runs unlimited and says so)."""
        name = f"steertool-bench-{os.getpid()}-{next(_COUNTER)}"
        v2 = Path("/sys/fs/cgroup")
        for root, version in ((v2 / "unified", 2), (v2, 2), (v2 / "memory", 1)):
            limit_file = "memory.max" if version == 2 else "memory.limit_in_bytes"
            probe = "cgroup.subtree_control" if version == 2 else "memory.limit_in_bytes"
            if not (root / probe).exists() or not os.access(root, os.W_OK):
                continue
            path = root / name
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / limit_file).write_text(str(limit))
            except OSError:
                path.rmdir()
                continue
            return MemoryGroup(path, version, limit)
        return None

    def join_self(self) -> None:
        """Moves the calling process into the group (use as Popen's preexec_fn: the child joins
        before it execs, so everything it maps is charged here)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak_bytes(self) -> int:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for passing the limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        for _ in range(50):   # the group must be empty (children of the job) before rmdir
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
