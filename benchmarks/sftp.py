"""SFTP channel figures against a private OpenSSH sshd on loopback.

    python benchmarks/sftp.py [--small 1000] [--large-mb 100] [--repeat 3]

Inbound: 1,000 small files (~1.4 KB, each its own content) from the ready listing to handed
over (download, size check against the listing, sha256) and to archived (plus the archive
write the gateway's intake does: written, read back, renamed to its content address; its
fsync is deferred to just before the source is touched, as in the gateway), and one 100 MB
file; each against raw paramiko over one connection in the same run (``listdir_attr`` +
``open()+read()``; for the large file ``open()`` + ``prefetch()`` + ``read()``, paramiko's
fastest path). Outbound: ``deliver`` (temp name,
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

from edigw.channels.base import AfterAction, IncomingFile, MemorySeenFiles, Readiness
from edigw.channels.sftp.connection import SftpConnections
from edigw.channels.sftp.inbound import SftpInboundChannel
from edigw.channels.sftp.outbound import SftpOutboundChannel
from edigw.channels.sftp.settings import (
    SftpEndpointSettings,
    SftpInboundSettings,
    SftpOutboundSettings,
)
from edigw.journal.archive_folder import FolderArchive
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
    parser.add_argument("--repeat", type=int, default=5, help="runs per measure (median)")
    parser.add_argument(
        "--staging",
        type=Path,
        default=Path(".bench-sftp-staging"),
        help="staging folder (like data_dir/staging: on the gateway's disk; removed afterwards)",
    )
    parser.add_argument(
        "--archive",
        type=Path,
        default=Path(".bench-sftp-archive"),
        help="archive folder (like data_dir/archive: on the gateway's disk; removed afterwards)",
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
        for i in range(args.small):  # same size, each its own content (and archive copy)
            (small / f"order-{i:05}.csv").write_bytes(f"{i:010d}".encode() + body[10:])
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

        def raw_small_staged() -> None:
            args.staging.mkdir(parents=True, exist_ok=True)
            for i, attrs in enumerate(sftp.listdir_attr(str(small))):
                with sftp.open(f"{small}/{attrs.filename}", "rb") as fh:
                    (args.staging / f"raw-{i}").write_bytes(fh.read())
            shutil.rmtree(args.staging)

        def archive_all(files: list[IncomingFile], archive: FolderArchive) -> None:
            """What the gateway's intake does first with each file handed over (``ingest``)."""
            for incoming in files:
                if incoming.content is None:
                    archive.store(incoming.local_path, durable=False)
                else:
                    archive.store_bytes(incoming.content, durable=False)

        def edigw_poll(
            folder: Path, staging: Path, *, archive_root: Path | None = None
        ) -> Callable[[], float]:
            def run() -> float:
                if archive_root is not None:
                    shutil.rmtree(archive_root, ignore_errors=True)  # every round from empty
                    archive = FolderArchive(archive_root)
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
                if archive_root is not None:
                    archive_all(files, archive)
                elapsed = time.perf_counter() - timed_start
                assert len(files) == len(list(folder.iterdir())), "not every file was staged"
                channel.close()
                return elapsed

            return run

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

        def timed(fn: Callable[[], object]) -> float:
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
            return result if isinstance(result, float) else elapsed

        n, mb = args.small, args.large_mb
        tmpfs_staging = Path(
            tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
        )
        measures = [
            (
                f"inbound, {n} files of {len(body)} B: ready listing → handed over",
                "files/s",
                n,
                raw_small,
                edigw_poll(small, args.staging),
            ),
            (
                f"inbound, {n} files of {len(body)} B: ready listing → archived",
                "files/s",
                n,
                raw_small,
                edigw_poll(small, args.staging, archive_root=args.archive),
            ),
            (
                f"inbound, {n} files of {len(body)} B, staging on tmpfs",
                "files/s",
                n,
                raw_small,
                edigw_poll(small, tmpfs_staging),
            ),
            (
                f"inbound, one {mb} MB file → staged",
                "MB/s",
                mb,
                raw_large,
                edigw_poll(large, args.staging),
            ),
            (
                f"outbound, {n} files of {len(body)} B: temp + rename",
                "files/s",
                n,
                raw_put(src_small, n),
                ours_put(src_small, n),
            ),
            (
                f"outbound, one {mb} MB file: temp + rename",
                "MB/s",
                mb,
                raw_put(src_large, 1),
                ours_put(src_large, 1),
            ),
        ]
        rows = []
        for name, unit, amount, raw_fn, ours_fn in measures:
            pairs = [(timed(raw_fn), timed(ours_fn)) for _ in range(args.repeat)]
            raw_rate = amount / statistics.median(p[0] for p in pairs)
            ours_rate = amount / statistics.median(p[1] for p in pairs)
            ratio = statistics.median(p[0] / p[1] for p in pairs)
            rows.append((name, unit, raw_rate, ours_rate, ratio))
        staged_rate = n / statistics.median(timed(raw_small_staged) for _ in range(args.repeat))

        sftp.close()
        transport.close()
        connections.close()
        shutil.rmtree(args.staging, ignore_errors=True)
        shutil.rmtree(args.archive, ignore_errors=True)
        shutil.rmtree(tmpfs_staging, ignore_errors=True)
    create_cost = file_create_cost(args.staging)

    print(
        f"| measure | unit | raw paramiko | edigw | edigw / raw |  "
        f"(medians of {args.repeat} interleaved rounds; ratio = median of per-round ratios)"
    )
    print("|---|---|---:|---:|---:|")
    for name, unit, raw, ours, ratio in rows:
        print(f"| {name} | {unit} | {raw:,.0f} | {ours:,.0f} | {ratio:.0%} |")
    print(
        f"\nraw open()+read() that also writes each file to {args.staging}: "
        f"{staged_rate:,.0f} files/s (creating a small file there costs "
        f"{create_cost * 1e6:.0f} µs; raw paramiko above writes nothing to disk)"
    )
    print(
        f"first look (listing only, readiness needs two looks): "
        f"{statistics.median(first_looks) * 1000:.0f} ms median over both folders"
    )


if __name__ == "__main__":
    main()
