"""Local mail sources: .eml files, directory trees, Maildirs and mbox files; never modified."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from guard.cli.main import main
from guard.mail import files
from guard.mail.files import MessageRef, SourceError, message_refs


def eml(subject: str, body: str = "hello", sender: str = "a@example.com") -> bytes:
    return f"From: {sender}\nSubject: {subject}\nContent-Type: text/plain\n\n{body}\n".encode()


def refs(target: Path | str) -> list[MessageRef]:
    return list(message_refs(str(target)))


def subjects(found: list[MessageRef]) -> list[str]:
    out = []
    for ref in found:
        for line in ref.read().splitlines():
            if line.startswith(b"Subject: "):
                out.append(line[9:].decode())
                break
        else:
            out.append("?")
    return out


def test_single_eml_file(tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(eml("one"))
    [ref] = refs(path)
    assert ref.source == str(path)
    assert ref.id == "one.eml"
    assert ref.read() == eml("one")


def test_a_file_with_any_name_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "message.txt"
    path.write_bytes(eml("txt"))
    assert subjects(refs(path)) == ["txt"]


def test_directory_tree_is_walked_recursively_and_skips_non_mail(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / "a.eml").write_bytes(eml("a"))
    (root / "b" / "b.EML").write_bytes(eml("b"))
    (root / "b" / "deeper" / "c.eml").write_bytes(eml("c"))
    (root / "b" / "deeper" / "d.msg.txt").write_bytes(eml("d"))
    (root / "rules.toml").write_text('[[service]]\nid = "x"\n')
    (root / "README.md").write_text("# notes\n")
    (root / "b" / "image.png").write_bytes(b"\x89PNG\r\n")
    (root / ".hidden.eml").write_bytes(eml("hidden"))
    (root / "notes").write_text("an extensionless file that is not an mbox\n")
    found = refs(root)
    assert subjects(found) == ["a", "b", "c", "d"]
    assert [r.source for r in found] == [
        f"{root}/a.eml",
        f"{root}/b/b.EML",
        f"{root}/b/deeper/c.eml",
        f"{root}/b/deeper/d.msg.txt",
    ]


def make_maildir(root: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "cur" / "1700000000.M1P1.host:2,S").write_bytes(eml("seen"))
    (root / "new" / "1700000001.M2P1.host").write_bytes(eml("new"))
    (root / "tmp" / "1700000002.M3P1.host").write_bytes(eml("being delivered"))
    (root / "cur" / ".dotfile").write_bytes(eml("dot"))


def test_maildir_cur_and_new_not_tmp(tmp_path: Path) -> None:
    box = tmp_path / "Maildir"
    make_maildir(box)
    found = refs(box)
    assert subjects(found) == ["seen", "new"]
    assert [r.id for r in found] == ["1700000000.M1P1.host", "1700000001.M2P1.host"]
    assert found[0].source == f"{box}/cur/1700000000.M1P1.host:2,S"


def test_maildir_lists_files_and_links_to_files_in_name_order(tmp_path: Path) -> None:
    """What Path.is_file said of each entry: links to a file count, links to nothing, to a
    directory or to themselves do not, nor do directories."""
    box = tmp_path / "Maildir"
    make_maildir(box)
    new = box / "new"
    (new / "b:2,").write_bytes(eml("b"))
    (new / "a").symlink_to(new / "b:2,")
    (new / "broken").symlink_to(tmp_path / "nothing")
    (new / "loop1").symlink_to(new / "loop2")
    (new / "loop2").symlink_to(new / "loop1")
    (new / "dirlink").symlink_to(tmp_path)
    (new / "sub").mkdir()
    found = refs(f"{box}/")
    assert [r.id for r in found] == ["1700000000.M1P1.host", "1700000001.M2P1.host", "a", "b"]
    assert subjects(found) == ["seen", "new", "b", "b"]
    assert [r.path for r in found[2:]] == [str(new / "a"), str(new / "b:2,")]
    assert found[2].source == f"{box}//new/a"  # the path as given, then the entry


def test_maildir_inside_a_directory_tree(tmp_path: Path) -> None:
    make_maildir(tmp_path / "mail" / "Inbox")
    (tmp_path / "mail" / "x.eml").write_bytes(eml("x"))
    assert subjects(refs(tmp_path / "mail")) == ["seen", "new", "x"]


MBOX = (
    b"From alice@example.com Mon Jan  1 00:00:00 2024\n"
    b"From: alice@example.com\nSubject: first\n\n"
    b"body line one\n"
    b">From the archives, quoted by the writer\n"
    b">>From twice quoted\n"
    b"From here on a body line that is not preceded by a blank line\n"
    b"\n"
    b"From bob@example.com Tue Jan  2 00:00:00 2024\n"
    b"From: bob@example.com\nSubject: second\n\n"
    b"second body\n"
    b"\n"
    b"From carol@example.com Wed Jan  3 00:00:00 2024\n"
    b"From: carol@example.com\nSubject: third\n\n"
    b"third body\n"
)


def test_mbox_split_and_unescape(tmp_path: Path) -> None:
    path = tmp_path / "archive.mbox"
    path.write_bytes(MBOX)
    found = refs(path)
    assert subjects(found) == ["first", "second", "third"]
    assert [r.source for r in found] == [f"{path}#1", f"{path}#2", f"{path}#3"]
    assert [r.id for r in found] == ["1", "2", "3"]
    first = found[0].read()
    assert not first.startswith(b"From alice")  # the separator line is not part of the message
    assert first.startswith(b"From: alice@example.com\n")
    assert b"\nFrom the archives, quoted by the writer\n" in first
    assert b"\n>From twice quoted\n" in first
    assert b"\nFrom here on a body line that is not preceded by a blank line\n" in first
    assert found[2].read().rstrip(b"\n").endswith(b"third body")


def test_extensionless_mbox_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "Inbox"
    path.write_bytes(MBOX)
    assert subjects(refs(path)) == ["first", "second", "third"]
    root = tmp_path / "tree"
    root.mkdir()
    (root / "Sent").write_bytes(MBOX)
    (root / "old.mbx").write_bytes(MBOX)
    found = refs(root)
    assert [r.source for r in found] == [
        f"{root}/Sent#1",
        f"{root}/Sent#2",
        f"{root}/Sent#3",
        f"{root}/old.mbx#1",
        f"{root}/old.mbx#2",
        f"{root}/old.mbx#3",
    ]


def test_mbox_suffix_without_from_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.mkdir()
    (path / "x.mbox").write_bytes(eml("not an mbox"))
    with pytest.raises(SourceError, match="not an mbox"):
        refs(path)


def test_nonexistent_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.eml"
    with pytest.raises(SourceError) as info:
        refs(missing)
    assert str(info.value) == f"{missing}: no such file or directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_real_permissions(tmp_path: Path) -> None:
    path = tmp_path / "secret.eml"
    path.write_bytes(eml("x"))
    path.chmod(0)
    try:
        with pytest.raises(SourceError, match="permission denied"):
            refs(path)
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_unreadable_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    target = tmp_path / "x"
    if kind == "dir":
        target.mkdir()
    else:
        target.write_bytes(eml("x"))
    monkeypatch.setattr(files.os, "access", lambda *_a, **_k: False)
    with pytest.raises(SourceError) as info:
        refs(target)
    assert str(info.value) == f"{target}: permission denied"


def test_symlink_loop_is_walked_once(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    (root / "a").mkdir(parents=True)
    (root / "a" / "m.eml").write_bytes(eml("m"))
    (root / "a" / "loop").symlink_to(root)
    found = refs(root)
    assert subjects(found) == ["m"]


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path)] = (digest, st.st_mtime_ns, st.st_mode)
    return out


def test_scanning_never_modifies_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "mail"
    make_maildir(root / "Maildir")
    (root / "archive.mbox").write_bytes(MBOX)
    tracked = (
        b"From: news@shop.example.com\nSubject: t\n"
        b"Disposition-Notification-To: news@shop.example.com\n"
        b"Content-Type: text/html\n\n"
        b'<img src="https://u1.ct.sendgrid.net/wf/open?upn=abc" width="1" height="1">'
    )
    (root / "tracked.eml").write_bytes(tracked)
    (root / "broken.eml").write_bytes(b"")
    old = 1_500_000_000_000_000_000
    for path in root.rglob("*"):
        os.utime(path, ns=(old, old))
    before = snapshot(root)
    for fmt in ("text", "json", "csv"):
        assert main(["scan", "--format", fmt, str(root)]) == 0
    assert main(["scan", "-v", str(root / "tracked.eml"), str(root / "archive.mbox")]) == 0
    out = capsys.readouterr().out
    assert "SendGrid" in out
    assert snapshot(root) == before
    assert sorted(p.name for p in root.iterdir()) == [
        "Maildir",
        "archive.mbox",
        "broken.eml",
        "tracked.eml",
    ]


def test_read_file_reads_what_a_buffered_open_reads(tmp_path: Path) -> None:
    for size in (0, 1, 4095, 65536, 300_001):
        path = tmp_path / f"m{size}"
        data = os.urandom(size)
        path.write_bytes(data)
        assert files.read_file(str(path)) == data
        assert files.read_file(str(path), size) == data  # the limit itself is allowed
        if size:
            assert files.read_file(str(path), size - 1) is None
        assert MessageRef(str(path), "m", "m").read() == data


def test_read_file_errors_are_oserrors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        files.read_file(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        files.read_file(str(tmp_path))
