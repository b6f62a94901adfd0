"""Several throw-away clickhouse-servers on loopback configured as one cluster (shards × replicas)."""

from __future__ import annotations

import time

from tests.clickhouse_server import ClickHouseServer, free_port


def cluster_config(name: str, shards: list[list[ClickHouseServer]], replicated: bool) -> str:
    """The `<remote_servers>` section naming every server by its loopback tcp port."""
    parts = []
    for replicas in shards:
        hosts = "".join(f"<replica><host>127.0.0.1</host><port>{s.tcp_port}</port></replica>" for s in replicas)
        internal = "<internal_replication>true</internal_replication>" if replicated else ""
        parts.append(f"<shard>{internal}{hosts}</shard>")
    return f"<remote_servers><{name}>{''.join(parts)}</{name}></remote_servers>"


def start_cluster(name: str, replicas_per_shard: list[int], zookeeper_xml: str = "") -> list[list[ClickHouseServer]]:
    """Start the servers of a cluster; servers[shard][replica]. Replicated when ZooKeeper is given.

    Servers pick their ports when created, so all are created before any config is written.
    Each gets `<macros>` (shard 01, 02, …; replica r1, r2, …) and its own interserver port.
    """
    shards = [[ClickHouseServer() for _ in range(n)] for n in replicas_per_shard]
    remote = cluster_config(name, shards, replicated=bool(zookeeper_xml))
    try:
        for s_index, replicas in enumerate(shards, 1):
            for r_index, server in enumerate(replicas, 1):
                server.extra_config = (
                    remote
                    + zookeeper_xml
                    + f"<macros><shard>{s_index:02d}</shard><replica>r{r_index}</replica></macros>"
                    + "<interserver_http_host>127.0.0.1</interserver_http_host>"
                    + f"<interserver_http_port>{free_port()}</interserver_http_port>"
                )
                server.start()
                if zookeeper_xml:
                    wait_for_zookeeper(server)
    except BaseException:
        remove_cluster(shards)
        raise
    return shards


def wait_for_zookeeper(server: ClickHouseServer, timeout_s: float = 30.0) -> None:
    """Until the server's ZooKeeper session answers (a slow JVM start would fail the first DDL)."""
    from clickhouse_driver import Client

    client = Client("127.0.0.1", port=server.tcp_port)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.execute("SELECT count() FROM system.zookeeper WHERE path = '/'")
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"clickhouse-server on {server.tcp_port} cannot reach ZooKeeper: {exc}") from exc
            time.sleep(0.2)
        finally:
            client.disconnect()


def remove_cluster(shards: list[list[ClickHouseServer]]) -> None:
    """SIGKILL and delete: the data is thrown away (a clean stop waits ~10 s on 18.16)."""
    for replicas in shards:
        for server in replicas:
            server.kill()
            server.remove()
