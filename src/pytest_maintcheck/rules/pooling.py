"""Connection pooling: clients waiting, the longest wait, saturation of max_client_conn and of
each pool, and the server connections the pools may open against max_connections."""

from __future__ import annotations

from pytest_maintcheck.config_operations import Pooler
from pytest_maintcheck.probes.pgbouncer import ADMIN_DATABASE, PoolerState, ServerLimit
from pytest_maintcheck.verdict import Assessment, Verdict


def judge_pooler(
    pooler: Pooler, state: PoolerState, limit: ServerLimit | None, assessment: Assessment
) -> None:
    name, limits = pooler.name, pooler.thresholds
    pools = state.served_pools
    assessment.details.update(pooler=state.to_json())
    waiting = [p for p in pools if p.waiting]
    shown = ", ".join(f"{p.database}/{p.user} {p.waiting}" for p in waiting[:5])
    assessment.measure(
        limits.get("clientsWaiting"),
        sum(p.waiting for p in pools),
        subject=f"{name}: clients waiting for a server connection ({shown or 'none'})",
        action=f"Raise pool_size for the pools named in {name}, or find the transactions "
        "holding server connections (pg_stat_activity, idle in transaction).",
    )
    oldest = max(pools, key=lambda p: p.max_wait, default=None)
    assessment.measure(
        limits.get("maxWait"),
        round(oldest.max_wait, 3) if oldest else 0.0,
        subject=f"{name}: {oldest.database}/{oldest.user}" if oldest else name,
        action="Clients wait this long before a query starts: raise the pool size or shorten "
        "the transactions that hold it.",
    )
    _judge_client_connections(pooler, state, assessment)
    _judge_pool_usage(pooler, state, assessment)
    if limit is not None:
        _judge_server_connections(pooler, state, limit, assessment)
    elif pooler.database is None:
        assessment.notes.append(
            "server connections not compared with max_connections: set database on the "
            "pooling entry"
        )


def _judge_client_connections(pooler: Pooler, state: PoolerState, assessment: Assessment) -> None:
    max_client = state.setting("max_client_conn")
    clients = sum(p.clients for p in state.pools)  # the console's own client counts too
    if not max_client:
        assessment.add_finding(
            Verdict.DEGRADED,
            f"{pooler.name}: SHOW CONFIG gave no max_client_conn",
            "Check the PgBouncer version and that the account may run SHOW CONFIG.",
        )
        return
    assessment.measure(
        pooler.thresholds.get("clientConnections"),
        round(clients / max_client, 4),
        subject=f"{pooler.name}: {clients} clients of max_client_conn {max_client}",
        action=f"Raise max_client_conn in {pooler.name}'s pgbouncer.ini (and the open files "
        "limit with it), or find the clients that do not close their connections.",
    )


def _judge_pool_usage(pooler: Pooler, state: PoolerState, assessment: Assessment) -> None:
    sizes = {d.name: d.pool_size for d in state.databases}
    limit = pooler.thresholds.get("poolUsage")
    usages = []
    for pool in state.served_pools:
        size = sizes.get(pool.database) or state.setting("default_pool_size")
        if not size:
            continue
        usage = pool.servers / size
        usages.append(usage)
        if limit is not None and limit.judge(usage) is not Verdict.PASS:
            assessment.measure(
                limit,
                round(usage, 4),
                key=f"poolUsage:{pool.database}/{pool.user}",
                subject=f"{pooler.name}: pool {pool.database}/{pool.user} holds {pool.servers} "
                f"server connections of pool_size {size}",
                action=f"Raise pool_size for {pool.database} if PostgreSQL has room, or find the "
                "queries holding the pool.",
            )
    assessment.metrics["poolUsage"] = round(max(usages), 4) if usages else None
    if limit is not None:
        assessment.thresholds["poolUsage"] = limit.to_json()


def possible_server_connections(state: PoolerState) -> tuple[int, list[str]]:
    """How many server connections the pools may open, with the arithmetic per database."""
    pools_per_db: dict[str, int] = {}
    for pool in state.served_pools:
        pools_per_db[pool.database] = pools_per_db.get(pool.database, 0) + 1
    total, steps = 0, []
    db_cap = state.setting("max_db_connections")
    for db in state.databases:
        if db.name == ADMIN_DATABASE:
            continue
        pools = max(pools_per_db.get(db.name, 0), 1)
        per_pool = db.pool_size + db.reserve_pool
        possible = pools * per_pool
        cap = min((c for c in (db.max_connections, db_cap) if c > 0), default=0)
        capped = min(possible, cap) if cap else possible
        total += capped
        step = f"{db.name}: {pools} pool(s) x ({db.pool_size} + {db.reserve_pool} reserve)"
        steps.append(
            step + (f" capped at {cap}" if cap and cap < possible else "") + f" = {capped}"
        )
    return total, steps


def _judge_server_connections(
    pooler: Pooler, state: PoolerState, limit: ServerLimit, assessment: Assessment
) -> None:
    possible, steps = possible_server_connections(state)
    open_now = sum(p.servers for p in state.served_pools)
    assessment.details.update(
        serverConnections={
            "possible": possible,
            "arithmetic": steps,
            "open": open_now,
            "maxConnections": limit.max_connections,
            "reserved": limit.reserved,
        }
    )
    if not limit.available:
        assessment.could_not_measure(f"{pooler.name}: max_connections leaves no connection")
        return
    assessment.measure(
        pooler.thresholds.get("serverConnections"),
        round(possible / limit.available, 4),
        subject=f"{pooler.name}: the pools may open {possible} server connections "
        f"({'; '.join(steps)}; {open_now} open now) against {pooler.database}'s "
        f"max_connections {limit.max_connections} - {limit.reserved} reserved = "
        f"{limit.available}",
        action=f"Lower pool_size/reserve_pool or set max_db_connections in {pooler.name}, or "
        f"raise max_connections on {pooler.database} (a restart), so a busy pool cannot "
        "lock out other clients.",
    )
