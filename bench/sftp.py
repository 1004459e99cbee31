"""Benchmark: a 1 GB dossier file from police SFTP through the gateway to the receiver's SFTP.

Starts a real OpenSSH sshd on loopback, drops a record listing a 1 GB dossier file (with its
SHA-256) in the police directory, runs a gateway process, and reports:

- the gateway's peak memory (VmHWM of the gateway process, and the highest sampled VmRSS),
  against the 150 MB target;
- MB/s of the gateway's download and upload, and of OpenSSH's `sftp` client (get and put of the
  same file on the same server), and their ratio;
- the time from a small record's rename into place to its arrival at the receiver, against
  "poll interval plus one second".

Run: .venv/bin/python bench/sftp.py [--size-mb 1024] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.sim.sshd import ensure_sshd, start_sshd  # noqa: E402
from tests.support.drops import drop, drop_dict  # noqa: E402
from tests.support.nodes import Node  # noqa: E402
from tests.support.records import dossier_record  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

MB = 1024 * 1024


def write_random(path: Path, size: int) -> str:
    """A file of `size` random bytes (1 MiB blocks); returns its SHA-256."""
    h = hashlib.sha256()
    block = os.urandom(MB)
    with path.open("wb") as f:
        for i in range(size // MB):
            chunk = (i.to_bytes(8, "big") + block[8:]) if i else block
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()


def status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this script's finished children (and theirs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_rss, self.hwm = pid, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            s = status(self.pid)
            self.peak_rss = max(self.peak_rss, s.get("VmRSS", 0))
            self.hwm = max(self.hwm, s.get("VmHWM", 0))
            time.sleep(0.02)


def records_in(d: Path) -> list[str]:
    return (
        sorted(p.name for p in d.iterdir() if p.name.endswith(".xml") and not p.name.startswith("."))
        if d.is_dir()
        else []
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--poll-interval", type=float, default=2.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    why = ensure_sshd()
    if why:
        raise SystemExit(why)
    base = Path(tempfile.mkdtemp(prefix="bench-sftp-", dir=os.environ.get("BENCH_DIR")))
    server = start_sshd(base / "sshd")
    node: Node | None = None
    try:
        src, out, data = base / "police", base / "proc", base / "data"
        src.mkdir()
        size = args.size_mb * MB
        print(f"writing a {args.size_mb} MB dossier file ...", flush=True)
        big = base / "big.bin"
        digest = write_random(big, size)

        # OpenSSH's sftp client on the same server, same file (its CPU: sftp and the ssh under it)
        c0 = children_cpu()
        t_get = server.sftp_batch(f"get {big} {base / 'got.bin'}\n")
        c1 = children_cpu()
        (base / "got.bin").unlink()
        t_put = server.sftp_batch(f"put {big} {base / 'put.bin'}\n")
        ssh_cpu = (c1 - c0, children_cpu() - c1)
        (base / "put.bin").unlink()

        cfg = drop_dict(
            data,
            {
                "adapter": "sftp",
                "settings": server.settings(src, poll_interval=args.poll_interval, complete_when="renamed"),
            },
            {"adapter": "sftp", "settings": server.settings(out)},
            lease_seconds=900.0,
            api={"port": 0},
        )
        config = base / "gateway.json"
        config.write_text(json.dumps(cfg))
        node = Node("sftp-bench", 0, config)
        node.start()
        assert node.proc is not None and node.log is not None
        proc, log = node.proc, node.log
        sampler = Sampler(proc.pid)
        sampler.start()
        time.sleep(3.0)  # started and idle
        idle_rss = status(proc.pid).get("VmRSS", 0)

        os.replace(big, src / "BIG.scan.pdf")
        tmp = src / ".BIG.xml.part"
        tmp.write_bytes(dossier_record("C2026-9001", {"BIG.scan.pdf": (digest, size)}))
        started, gw_cpu = time.monotonic(), cpu_of(proc.pid)
        os.replace(tmp, src / "BIG.xml")
        wait_until(lambda: bool(records_in(out)), 1800, "the 1 GB dossier to arrive", interval=0.01)
        end_to_end, gw_cpu = time.monotonic() - started, cpu_of(proc.pid) - gw_cpu
        # the receiver's folder layout is the channel's attachment_name (default {message_id}/{name})
        got = next(out.rglob("BIG.scan.pdf"), None)
        assert got is not None, f"the dossier file was not delivered: {sorted(map(str, out.rglob('*')))}"
        assert got.stat().st_size == size, "the delivered dossier file has the wrong size"

        latencies = []
        for i in range(5):
            drop(base, f"S{i}", f"C2026-91{i:02d}")  # prepared aside, then moved into place
            os.replace(base / f"S{i}.scan.pdf", src / f"S{i}.scan.pdf")
            t0 = time.monotonic()
            os.replace(base / f"S{i}.xml", src / f"S{i}.xml")
            expected = i + 2
            wait_until(lambda: len(records_in(out)) == expected, 60, "a small record", interval=0.01)  # noqa: B023
            latencies.append(time.monotonic() - t0)
            time.sleep(0.37 * (i + 1) % args.poll_interval)  # land at different points of the poll cycle

        sampler.stop.set()
        sampler.join()
        final = status(proc.pid)
        text = log.read_text()
        fetched = re.search(r"fetched BIG.xml with 1 dossier file\(s\), (\d+) bytes in ([\d.]+) s", text)
        wrote = re.search(r"wrote \S+ with 1 dossier file\(s\), (\d+) bytes in ([\d.]+) s", text)
        if not fetched or not wrote:
            raise SystemExit(f"transfer lines not found in the gateway log:\n{text[-2000:]}")
        down = int(fetched.group(1)) / MB / float(fetched.group(2))
        up = int(wrote.group(1)) / MB / float(wrote.group(2))
        sget, sput = size / MB / t_get, size / MB / t_put
        hwm = max(sampler.hwm, final.get("VmHWM", 0))
        print()
        print(
            f"machine                      {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
            f"(other work on the machine lowers both rates)"
        )
        print(f"dossier file                 {args.size_mb} MB, SHA-256 checked on arrival and on delivery")
        print(
            f"gateway download (paramiko)  {down:8.1f} MB/s   OpenSSH sftp get {sget:8.1f} MB/s   "
            f"ratio {down / sget:.2f}"
        )
        print(
            f"gateway upload   (paramiko)  {up:8.1f} MB/s   OpenSSH sftp put {sput:8.1f} MB/s   "
            f"ratio {up / sput:.2f}"
        )
        print(
            f"police drop -> receiver      {end_to_end:8.1f} s end to end "
            f"({size / MB / end_to_end:.1f} MB/s, download + intake + upload)"
        )
        print(
            f"client CPU                   gateway {gw_cpu:.1f} s for download + intake + upload; OpenSSH sftp "
            f"{ssh_cpu[0]:.1f} s get + {ssh_cpu[1]:.1f} s put = {sum(ssh_cpu):.1f} s; ratio "
            f"{sum(ssh_cpu) / gw_cpu:.2f} (CPU time does not count what neighbours take, so it compares "
            f"across a busy machine where MB/s do not)"
        )
        print(
            f"gateway memory               idle {idle_rss / MB:.1f} MB, "
            f"peak RSS sampled {sampler.peak_rss / MB:.1f} MB, VmHWM {hwm / MB:.1f} MB   "
            f"target < 150 MB: {'OK' if hwm < 150 * MB else 'OVER'}"
        )
        print(
            f"small record latency         {', '.join(f'{x:.2f}' for x in latencies)} s "
            f"(max {max(latencies):.2f} s; poll interval {args.poll_interval:.1f} s + 1 s = "
            f"{args.poll_interval + 1:.1f} s: {'OK' if max(latencies) <= args.poll_interval + 1 else 'OVER'})"
        )
    finally:
        if node is not None:
            node.stop()
        server.stop()
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
