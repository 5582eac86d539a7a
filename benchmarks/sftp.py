"""SFTP channel figures against a private OpenSSH sshd on loopback.

    python benchmarks/sftp.py [--small 1000] [--large-mb 100] [--repeat 3]

Inbound: 1,000 small files (~1.4 KB) from the ready listing to staged files (download,
size check, sha256), and one 100 MB file; each against raw paramiko over one connection in
the same run (``listdir_attr`` + ``open()+read()``; for the large file ``open()`` +
``prefetch()`` + ``read()``, paramiko's fastest path). Outbound: ``deliver`` (temp name,
size check, rename, policy) against raw ``putfo`` to a temp name + ``posix_rename``.
Medians of ``--repeat`` runs, raw and edigw alternating.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edigw.channels.base import AfterAction, MemorySeenFiles, Readiness
from edigw.channels.sftp import (
    SftpConnections,
    SftpEndpointSettings,
    SftpInboundChannel,
    SftpInboundSettings,
    SftpOutboundChannel,
    SftpOutboundSettings,
)
from tests.fixtures.sshd import SshServer

ROW = b"ORD-000123;CUST-042;2026-11-28;ART-7781;3;12.50;37.50;Livraison express 24h;\n"


def raw_sftp(server: SshServer) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    sock = socket.create_connection((server.host, server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    transport.start_client()
    transport.auth_publickey(server.user, paramiko.PKey.from_path(server.client_key))
    sftp = paramiko.SFTPClient.from_transport(transport)
    assert sftp is not None
    return transport, sftp


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def file_create_cost(folder: Path) -> float:
    """Seconds to create and write one small file in ``folder`` (median of 200)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        times = []
        for i in range(200):
            start = time.perf_counter()
            (folder / f"probe-{i}").write_bytes(ROW * 18)
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000, help="number of small files")
    parser.add_argument("--large-mb", type=int, default=100, help="size of the large file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (median)")
    parser.add_argument(
        "--staging",
        type=Path,
        default=Path(".bench-sftp-staging"),
        help="staging folder (like data_dir/staging: on the gateway's disk; removed afterwards)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_text, SshServer(Path(tmp_text) / "sshd") as server:
        tmp = Path(tmp_text)
        known_hosts = tmp / "known_hosts"
        known_hosts.write_text(server.known_hosts_line)
        endpoint = SftpEndpointSettings(
            name="bench",
            host=server.host,
            port=server.port,
            username=server.user,
            key_file=server.client_key,
            known_hosts=known_hosts,
        )
        connections = SftpConnections({"bench": endpoint})
        transport, sftp = raw_sftp(server)

        small = tmp / "small"
        small.mkdir()
        body = ROW * 18  # ~1.4 KB
        for i in range(args.small):
            (small / f"order-{i:05}.csv").write_bytes(body)
        large = tmp / "large"
        large.mkdir()
        chunk = os.urandom(1 << 20)
        with (large / "big.bin").open("wb") as fh:
            for _ in range(args.large_mb):
                fh.write(chunk)
        large_bytes = args.large_mb << 20

        # ---------------------------------------------------------------- inbound
        def raw_small() -> None:
            for attrs in sftp.listdir_attr(str(small)):
                with sftp.open(f"{small}/{attrs.filename}", "rb") as fh:
                    fh.read()

        def raw_large() -> None:
            with sftp.open(f"{large}/big.bin", "rb") as fh:
                fh.prefetch(large_bytes)
                while fh.read(1 << 20):
                    pass

        first_looks: list[float] = []

        def edigw_poll(folder: Path) -> Callable[[], None]:
            def run() -> None:
                staging = args.staging
                channel = SftpInboundChannel(
                    SftpInboundSettings(
                        endpoint="bench",
                        path=str(folder),
                        readiness=Readiness(mode="stable", interval=0),
                        after=AfterAction(action="leave"),
                        max_files_per_poll=args.small,
                    ),
                    connections,
                    staging_dir=staging,
                    seen=MemorySeenFiles(),
                )
                start = time.perf_counter()
                channel.poll(now=0)  # first look: readiness needs two
                first_looks.append(time.perf_counter() - start)
                timed_start = time.perf_counter()
                files = channel.poll(now=10).files
                elapsed = time.perf_counter() - timed_start
                assert len(files) == len(list(folder.iterdir())), "not every file was staged"
                run.elapsed.append(elapsed)  # type: ignore[attr-defined]
                channel.close()

            run.elapsed = []  # type: ignore[attr-defined]
            return run

        ours_small = edigw_poll(small)
        ours_large = edigw_poll(large)
        raw_small_times, raw_large_times = [], []
        for _ in range(args.repeat):
            raw_small_times.append(median_time(raw_small, 1))
            ours_small()
            raw_large_times.append(median_time(raw_large, 1))
            ours_large()

        # ---------------------------------------------------------------- outbound
        out = tmp / "out"
        out.mkdir()
        src_small = tmp / "src-small.csv"
        src_small.write_bytes(body)
        src_large = large / "big.bin"

        def raw_put(src: Path, count: int) -> Callable[[], None]:
            def run() -> None:
                shutil.rmtree(out)
                out.mkdir()
                for i in range(count):
                    temp, final = f"{out}/.f{i}.part", f"{out}/f{i}.csv"
                    with src.open("rb") as fh:
                        sftp.putfo(fh, temp)
                    sftp.posix_rename(temp, final)

            return run

        def ours_put(src: Path, count: int) -> Callable[[], None]:
            channel = SftpOutboundChannel(
                SftpOutboundSettings(endpoint="bench", path=str(out)), connections
            )

            def run() -> None:
                shutil.rmtree(out)
                out.mkdir()
                for i in range(count):
                    channel.deliver(src, f"f{i}.csv")

            return run

        results = {}
        for label, raw_fn, ours_fn in [
            ("out_small", raw_put(src_small, args.small), ours_put(src_small, args.small)),
            ("out_large", raw_put(src_large, 1), ours_put(src_large, 1)),
        ]:
            raw_t, ours_t = [], []
            for _ in range(args.repeat):
                raw_t.append(median_time(raw_fn, 1))
                ours_t.append(median_time(ours_fn, 1))
            results[label] = (statistics.median(raw_t), statistics.median(ours_t))

        sftp.close()
        transport.close()
        connections.close()
        shutil.rmtree(args.staging, ignore_errors=True)
    create_cost = file_create_cost(args.staging)

    n, mb = args.small, args.large_mb
    rows = [
        (
            f"inbound, {n} files of {len(body)} B: ready listing → staged",
            "files/s",
            n / statistics.median(raw_small_times),
            n / statistics.median(ours_small.elapsed),  # type: ignore[attr-defined]
        ),
        (
            f"inbound, one {mb} MB file → staged",
            "MB/s",
            mb / statistics.median(raw_large_times),
            mb / statistics.median(ours_large.elapsed),  # type: ignore[attr-defined]
        ),
        (
            f"outbound, {n} files of {len(body)} B: temp + rename",
            "files/s",
            n / results["out_small"][0],
            n / results["out_small"][1],
        ),
        (
            f"outbound, one {mb} MB file: temp + rename",
            "MB/s",
            mb / results["out_large"][0],
            mb / results["out_large"][1],
        ),
    ]
    print(f"| measure | unit | raw paramiko | edigw | edigw / raw |  (median of {args.repeat})")
    print("|---|---|---:|---:|---:|")
    for name, unit, raw, ours in rows:
        print(f"| {name} | {unit} | {raw:,.0f} | {ours:,.0f} | {ours / raw:.0%} |")
    print(
        f"\nstaging folder {args.staging}: creating a small file there costs "
        f"{create_cost * 1e6:.0f} µs (raw paramiko writes nothing to disk)"
    )
    print(
        f"first look (listing only, readiness needs two looks): "
        f"{statistics.median(first_looks) * 1000:.0f} ms median over both folders"
    )


if __name__ == "__main__":
    main()
