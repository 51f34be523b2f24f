"""Every default of ``maintcheck.yaml`` in one place: thresholds and settings.

The loader fills in what a config leaves out from here, and the frozen config's dataclasses
take their own defaults from here, so a target built in code gets what a loaded one gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DAY = 86400.0

DEFAULT_THRESHOLDS: dict[str, dict[str, object]] = {
    "health": {"responseTime": {"warn": 1000, "fail": 5000}, "errorRate": {"warn": 0, "fail": 0.5}},
    "storage": {"usage": {"warn": 0.8, "fail": 0.9}, "inodeUsage": {"warn": 0.8, "fail": 0.9}},
    "database": {
        "deadTupleRatio": {"warn": 0.1, "fail": 0.2},
        "vacuumAge": {"warn": "7d", "fail": "14d"},
        "analyzeAge": {"warn": "7d", "fail": "14d"},
        "connectionUsage": {"warn": 0.75, "fail": 0.9},
        "wraparoundAge": {"warn": 500_000_000, "fail": 1_000_000_000},
        "cacheHitRatio": {"warn": 0.95, "fail": 0.90},
        "longTransaction": {"warn": "5m", "fail": "1h"},
        "size": {"warn": "50GB", "fail": "80GB"},
        "slowQuery": {"warn": "500ms", "fail": "2s"},
    },
    "certificate": {
        "daysToExpiry": {"warn": 30, "fail": 7},
        # each daysToExpiry level is capped at this share of the certificate's own lifetime:
        # ACME clients renew when a third is left
        "lifetimeLeft": {"warn": 1 / 3, "fail": 0.1},
        "minKeyBits": 2048,
    },
    "failedLogins": {
        "perAccount": {"warn": 5, "fail": 10},
        "perSource": {"warn": 20, "fail": 50},
        "ratio": {"warn": 0.2, "fail": 0.5},
    },
    "replication": {
        "replayLag": {"warn": "30s", "fail": "5m"},
        "replayLagBytes": {"warn": "1GB", "fail": "16GB"},
        "slotRetained": {"warn": "5GB", "fail": "20GB"},
    },
    "archiving": {"archiveMaxAge": "15m"},
}
DEFAULT_SIZE_CHANGE: dict[str, object] = {"warn": 0.2, "fail": 0.5}  # a backup that halved fails


@dataclass(frozen=True)
class Defaults:
    """What a config that names no value gets, by section and key (seconds for durations)."""

    # databases.<name>
    connect_timeout: float = 10.0
    statement_timeout: float = 30.0
    # healthChecks[]: one sample of a database or a disk says all; an API varies per request
    health_interval: float = 60.0
    health_samples: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"database": 1, "storage": 1})
    )
    health_samples_otherwise: int = 3
    health_timeout: float = 5.0
    # databaseMaintenance[]
    min_dead_tuples: int = 1000
    maintenance_timeout: float = 30.0
    repair_timeout: float = 900.0  # statement_timeout of each VACUUM/ANALYZE/REINDEX (--apply)
    lock_timeout: float = 5.0  # how long a repair may wait for a lock before giving up
    # backups[]
    backup_max_age: float = 26 * 3600.0  # a daily backup, with two hours' slack
    restore_max_duration: float = 1800.0
    restore_jobs: int = 2
    backup_tool_timeout: float = 120.0  # each pgbackrest/barman command, not the restore
    # certificates[]
    certificate_port: int = 443
    certificate_timeout: float = 10.0
    # securityMonitoring
    session_max_idle: float = 900.0
    session_max_lifetime: float = 12 * 3600.0
    monitoring_window: float = DAY
    # policies[]
    policy_review_every: float = 365 * DAY
    # siteChecks, metricChecks
    site_check_timeout: float = 30.0
    metric_check_timeout: float = 5.0  # a statement_timeout for sql; the whole GET for http
    # history
    history_window: float = 30 * DAY
    capacity_trend_factor: float = 1.5
    # probing
    connections_per_host: int = 6
    concurrency: int = 256

    def health_samples_for(self, kind: str) -> int:
        return self.health_samples.get(kind, self.health_samples_otherwise)


DEFAULTS = Defaults()
