"""A real Dovecot with LMTP and Pigeonhole Sieve that runs guard at delivery, in a temp dir.

The configuration is the recipe's own files, contrib/dovecot/ (the ones docs/delivery.md shows):
90-guard.conf is included as it is, guard.sieve (or guard-backup.sieve) is the sieve_before
script, guard-strip the filter program. Only their absolute paths are pointed into the temp dir
(PATHS below) and, for the tests' sake, the filter time-out is lowered after the include.

As root the server runs as `nobody`, like a mail user: the filter then needs a guard that
`nobody` can run, so the fixture makes a virtualenv from the system's Python whose site
directory is this checkout's (.venv), the way an administrator installs guard under /opt.

Messages go in with smtplib.LMTP and come back over IMAP (imapclient) on 127.0.0.1.
Used by tests/test_delivery.py and bench/bench_lmtp.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dovecot import (
    PASSWORD,
    _free_port,
    dovecot_version,
    find_binaries,
    on_free_ports,
    wait_ready,
)

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib" / "dovecot"
# The recipe's absolute paths, and what each becomes under the fixture's temp dir.
PATHS = {
    "/usr/local/lib/dovecot/sieve-filter": "filters",
    "/etc/dovecot/sieve/guard.sieve": "sieve/before.sieve",
    "/opt/guard/bin/guard": "guard-venv/bin/guard",
    "/etc/guard/users": "users",
}
FILTER_TIMEOUT = 4  # seconds; the recipe keeps Pigeonhole's 10 s, the tests wait less
SYSTEM_PYTHON = "/usr/bin/python3"


def recipe_text(name: str, root: Path) -> str:
    """A contrib/dovecot file with the recipe's paths pointed into `root`."""
    text = (CONTRIB / name).read_text()
    for recipe_path, here in PATHS.items():
        text = text.replace(recipe_path, str(root / here))
    return text


def _base_config(d: Path, user: str, group: str, imap: int, lmtp: int, guard: bool = True) -> str:
    if guard:
        timeout = f"plugin {{\n  sieve_filter_exec_timeout = {FILTER_TIMEOUT}s\n}}\n"
        recipe = f"!include {d}/90-guard.conf\n{timeout}"
    else:  # Sieve for users' own scripts only, as a server without the recipe has it
        recipe = "protocol lmtp {\n  mail_plugins = $mail_plugins sieve\n}\n"
    return f"""
protocols = imap lmtp
listen = {HOST}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log/dovecot.log
info_log_path = {d}/log/dovecot.log
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
disable_plaintext_auth = no
ssl = no
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = allow_all_users=yes home={d}/mail/%u
}}
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_max_userip_connections = 500
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {lmtp}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    user = {user}
  }}
  unix_listener stats-writer {{
    user = {user}
  }}
}}
plugin {{
  # every user's own script, as Debian's 90-sieve.conf has it
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}
{recipe}"""


def _guard_venv(target: Path) -> None:
    """A guard install the mail user can run at `target`. Not as root: the running virtualenv
    itself (the server runs as this user). As root (the server runs as nobody, who cannot run an
    interpreter under /root): a virtualenv of the system's Python whose site directory is this
    checkout's .venv; .pyc compiled ahead either way."""
    if os.geteuid() != 0:
        target.symlink_to(sys.prefix)
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(ROOT / "guard")],
            check=False,
            capture_output=True,
            timeout=300,
        )
        return
    site_packages = sysconfig.get_paths()["purelib"]
    subprocess.run(
        [SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(target)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != f"{sys.version_info[0]}.{sys.version_info[1]}":
        raise RuntimeError(f"{SYSTEM_PYTHON} is {version}, the test venv is another Python")
    own_site = target / "lib" / f"python{version}" / "site-packages"
    (own_site / "guard-checkout.pth").write_text(
        f"import site; site.addsitedir({site_packages!r})\n"
    )
    script = target / "bin" / "guard"
    script.write_text(
        f"#!{target}/bin/python\nimport sys\nfrom guard.cli.launch import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    subprocess.run(
        [str(target / "bin" / "python"), "-m", "compileall", "-q", str(ROOT / "guard")],
        check=False,
        capture_output=True,
        timeout=300,
    )


@dataclass
class DeliveryServer:
    root: Path
    imap_port: int
    lmtp_port: int
    proc: subprocess.Popen[bytes] | None = None
    owner: tuple[int, int] | None = None
    cpu_seconds: float | None = None
    """After stop(): CPU seconds of the server and every process it ran (None if unknown)."""

    @classmethod
    def start(
        cls, sieve: str = "guard.sieve", venv: Path | None = None, *, guard: bool = True
    ) -> DeliveryServer:
        """`guard=False`: the same server (LMTP, Sieve for users' own scripts) without the
        recipe, to compare with."""
        dovecot, doveconf = find_binaries()
        if dovecot_version(dovecot) >= (2, 4):
            raise RuntimeError("the delivery recipe is written for Dovecot 2.3 (docs/delivery.md)")
        if not Path("/usr/lib/dovecot/modules/sieve/lib90_sieve_extprograms_plugin.so").exists():
            raise RuntimeError("dovecot-sieve (Pigeonhole with extprograms) is not installed")

        def once() -> DeliveryServer:
            root = Path(tempfile.mkdtemp(prefix="guard-delivery-"))
            try:
                return cls._start_in(root, sieve, venv, guard, dovecot, doveconf)
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise

        return on_free_ports(once)

    @classmethod
    def _start_in(
        cls, root: Path, sieve: str, venv: Path | None, guard: bool, dovecot: str, doveconf: str
    ) -> DeliveryServer:
        for sub in ("run", "state", "log", "mail", "filters", "sieve", "users"):
            (root / sub).mkdir()
        as_root = os.geteuid() == 0
        import grp
        import pwd

        if as_root:
            user, group = "nobody", "nogroup"
            try:
                grp.getgrnam(group)
            except KeyError:
                group = "nobody"
        else:
            user = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
        uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
        if venv is None:
            _guard_venv(root / "guard-venv")
        else:  # shared by several servers (bench, test module): a symlink to one venv
            (root / "guard-venv").symlink_to(venv)
        imap, lmtp = _free_port(), _free_port()
        while lmtp == imap:
            lmtp = _free_port()
        (root / "90-guard.conf").write_text(recipe_text("90-guard.conf", root))
        (root / "sieve" / "before.sieve").write_text(recipe_text(sieve, root))
        program = root / "filters" / "guard-strip"
        program.write_text(recipe_text("guard-strip", root))
        program.chmod(0o755)
        conf = root / "dovecot.conf"
        conf.write_text(_base_config(root, user, group, imap, lmtp, guard))
        os.chmod(root, 0o755)
        check = subprocess.run(
            [doveconf, "-c", str(conf), "-n"], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(f"dovecot rejects the recipe: {' '.join(check.stderr.split())}")
        # Compile the global script ahead, as the recipe says (the mail user cannot write there).
        if guard:
            subprocess.run(
                ["/usr/bin/sievec", "-c", str(conf), str(root / "sieve" / "before.sieve")],
                check=True,
                capture_output=True,
                timeout=60,
            )
        if as_root:
            for sub in ("run", "state", "log", "mail"):
                for dirpath, _dirs, files in os.walk(root / sub):
                    os.chown(dirpath, uid, gid)
                    for f in files:
                        os.chown(os.path.join(dirpath, f), uid, gid)
        kwargs: dict[str, Any] = {"user": user, "group": group} if as_root else {}
        proc = subprocess.Popen(  # stdio away from pipes: the master keeps them open
            [dovecot, "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
        server = cls(root, imap, lmtp, proc, (uid, gid))
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self) -> None:
        wait_ready(self.proc, [(self.imap_port, "* OK"), (self.lmtp_port, "220")], self.log_tail)

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = (self.root / "log" / "dovecot.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                # wait4: the CPU time of the whole server tree (each process reaps its children:
                # master <- lmtp <- filter programs), for bench/bench_lmtp.py
                pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
                if pid:
                    self.proc.returncode = os.waitstatus_to_exitcode(status)
                    self.cpu_seconds = usage.ru_utime + usage.ru_stime
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(OSError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the filter program and per-user data -------------------------------------------------

    def set_filter(self, text: str | None) -> None:
        """Replace the filter program (None: the recipe's own). It runs per message, so the next
        delivery uses it."""
        program = self.root / "filters" / "guard-strip"
        tmp = program.with_suffix(".new")
        tmp.write_text(text if text is not None else recipe_text("guard-strip", self.root))
        tmp.chmod(0o755)
        tmp.replace(program)

    def set_user_policy(self, address: str, toml: str) -> None:
        path = self.root / "users" / f"{address}.toml"
        path.write_text(toml)
        path.chmod(0o644)

    def set_user_sieve(self, user: str, script: str) -> None:
        home = self.root / "mail" / user
        home.mkdir(parents=True, exist_ok=True)
        (home / ".dovecot.sieve").write_text(script)
        if self.owner is not None and os.geteuid() == 0:
            for path in (home, home / ".dovecot.sieve"):
                os.chown(path, *self.owner)

    # -- delivering and reading back -------------------------------------------------------------

    def deliver(self, recipient: str, raw: bytes, sender: str = "sender@example.net") -> None:
        """One message over LMTP; raises smtplib errors when the server refuses it."""
        with smtplib.LMTP(HOST, self.lmtp_port, timeout=60) as lmtp:
            refused = lmtp.sendmail(sender, [recipient], raw)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def lmtp(self) -> smtplib.LMTP:
        return smtplib.LMTP(HOST, self.lmtp_port, timeout=60)

    def messages(self, user: str, folder: str = "INBOX") -> list[tuple[tuple[bytes, ...], bytes]]:
        """(flags, bytes) of every message in `folder`, in UID order (read without \\Seen)."""
        from imapclient import IMAPClient

        client = IMAPClient(HOST, port=self.imap_port, ssl=False, timeout=30)
        try:
            client.login(user, PASSWORD)
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return []
            data = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
            return [(tuple(data[u][b"FLAGS"]), data[u][b"BODY[]"]) for u in sorted(data)]
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def folders(self, user: str) -> list[str]:
        from imapclient import IMAPClient

        client = IMAPClient(HOST, port=self.imap_port, ssl=False, timeout=30)
        try:
            client.login(user, PASSWORD)
            return [name for _flags, _sep, name in client.list_folders()]
        finally:
            with contextlib.suppress(Exception):
                client.logout()
