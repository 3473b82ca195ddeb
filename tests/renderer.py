"""Headless Chromium as a mail client that may not touch the network: render HTML, record every
request the engine tries to make, refuse every one of them.

Used by tests/test_renderer.py to prove guard's findings against a real browser engine. Pure
standard library: Chromium is driven over the Chrome DevTools Protocol on a pipe
(`--remote-debugging-pipe`: JSON messages separated by NUL bytes on fds 3 and 4), so no debugging
port is opened at all and no websocket library is needed.

How nothing leaves the machine (each layer on its own would suffice for what it covers):

1. Interception: `Fetch.enable` with the pattern `*` on the *browser* target pauses every request
   of every page, frame and worker before it is sent. The driver records it and answers
   `Fetch.failRequest` (BlockedByClient); the one exception is the message document itself, which
   the driver answers with `Fetch.fulfillRequest` from memory. No request is ever continued.
2. Chromium's own DNS is disabled: `--host-resolver-rules="MAP * ~NOTFOUND"` makes every host name
   unresolvable (dns-prefetch and preconnect do not go through interception).
3. Everything that would still open a connection goes to a proxy on a closed port
   (`--proxy-server=127.0.0.1:9`), with `--proxy-bypass-list=<-loopback>` so loopback is not exempt.
4. Where the kernel allows it (root, or unprivileged user namespaces), Chromium runs in a new, empty
   network namespace (`unshare --net`, or `unshare --user --map-root-user --net`): its only
   interface is a loopback that is down, so no packet can leave even if all of the above failed.
   Otherwise it runs in the host's namespace and `Renderer.isolation` says so.

The page is served as `http://guard-render.invalid/N/message.html` (from memory, through
interception): an http origin like a webmail's, so protocol-relative URLs resolve to http(s) as
in a mail client, and http subresources are not rewritten by mixed-content upgrades. Scripts are
disabled (mail clients do not run them), lazy loading is off and the viewport is tall, so that
every image a client would eventually show is requested at once.

`Renderer.render_many` keeps up to `concurrency` pages loading side by side in the one browser
(a render mostly waits: for the load event, then for quiet). Each page is a tab in a browser
context of its own, and every intercepted request is booked to a render by the frame that made
it (a tab's main frame id is its target id; its child frames are announced on its session), so
attribution does not depend on timing. A request from a frame no tab claims is `stray`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urljoin

DOCUMENT_HOST = "guard-render.invalid"
DOCUMENT_URL = f"http://{DOCUMENT_HOST}/message.html"
BLOCK_ERROR = "BlockedByClient"
CID_PREFIX = f"http://{DOCUMENT_HOST}/cid/"
"""Where a `cid:` reference points once `rewrite_cid` rewrote it: the part is served from the
message itself (only with `Renderer(serve_cid=True)`), so what a cid: stylesheet or SVG loads is
requested, and recorded, like anything else."""
PLACEHOLDER_SIZE = 64
"""Intrinsic size (px, both ways) of the placeholder image `Renderer(placeholder_images=True)`
answers every remote image request with: an image whose size neither attributes nor CSS give is
laid out 64x64 (not a pixel), so the layout box says only what the HTML and CSS say."""
SNAPSHOT_STYLES = (
    "display",
    "visibility",
    "opacity",
    "width",
    "height",
    "max-width",
    "max-height",
    "overflow-x",
    "overflow-y",
    "background-image",
    "list-style-image",
    "border-image-source",
    "content",
)
"""The computed styles `DOMSnapshot.captureSnapshot` returns for every laid-out node."""

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container: the setuid/namespace sandbox is unavailable
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-pings",
    "--mute-audio",
    "--password-store=basic",
    "--use-mock-keychain",
    "--dns-prefetch-disable",
    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,"
    "BackForwardCache,ProactivelySwapBrowsingInstance,"
    "MediaRouter,OptimizationHints,Translate,AutofillServerCommunication,InterestFeedContentSuggestions",
    # Layer 2 and 3 (see the module docstring).
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    # Make the engine load everything a reader would eventually see, at once.
    "--blink-settings=lazyLoadEnabled=false,imagesEnabled=true",
    "--window-size=1280,8000",
    "--remote-debugging-pipe",
)


class RendererError(Exception):
    """Chromium could not be started or stopped answering."""


def find_chromium() -> str | None:
    """The Chromium executable: $GUARD_CHROMIUM, else the first of the usual names on PATH."""
    explicit = os.environ.get("GUARD_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            # Debian's /usr/bin/chromium is a shell script that adds flags from /etc/chromium.d
            # and keeps running beside the browser: start the browser itself.
            real = "/usr/lib/chromium/chromium"
            if name == "chromium" and os.access(real, os.X_OK):
                return real
            return path
    return None


def namespace_prefix() -> tuple[list[str], str]:
    """The command prefix that puts Chromium in a new empty network namespace, and a description.

    Returns ([], reason) when no namespace can be made here (no `unshare`, or the kernel refuses).
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return [], "no network namespace (util-linux `unshare` not found)"
    attempts = ([unshare, "--net"], [unshare, "--user", "--map-root-user", "--net"])
    for prefix in attempts:
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return list(prefix), "new network namespace (" + " ".join(prefix[1:]) + ")"
    return [], "no network namespace (unshare refused here); interception, DNS and proxy only"


def _die_with_parent() -> None:
    """preexec: SIGKILL Chromium if the test process dies, and give it its own process group."""
    os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Request:
    """One request the engine tried to make (and was refused)."""

    url: str
    resource_type: str
    """CDP resource type: Document, Stylesheet, Image, Media, Font, Fetch (prefetch), Other, …"""
    method: str = "GET"
    initiator: str = ""
    """What made the engine load it, from Network.requestWillBeSent: `parser message:LINE`
    (an element or a <style> of the message, with its line), `parser URL:LINE` (a stylesheet),
    `preload`, `other` (navigations such as meta refresh)."""
    main_frame: bool = False
    """A top-level navigation (e.g. meta refresh) rather than a subresource or a frame."""
    intercepted: bool = True
    """False for a request Chromium announced but that never reached interception (cancelled
    before it was started; had it been started it would have met the DNS/proxy/namespace walls)."""

    @property
    def is_navigation(self) -> bool:
        return self.resource_type == "Document"


@dataclass
class Render:
    """What one render of one HTML document tried to load."""

    url: str = DOCUMENT_URL
    """Where the message document was served from (a fresh path per render)."""
    requests: list[Request] = field(default_factory=list)
    timed_out: bool = False
    load_fired: bool = False
    seconds: float = 0.0
    snapshot: dict[str, Any] | None = None
    """`DOMSnapshot.captureSnapshot` of the page once it settled (`Renderer(snapshot=True)`),
    with the computed `SNAPSHOT_STYLES` of every laid-out node; see `image_boxes`."""
    snapshot_error: str = ""
    served: list[str] = field(default_factory=list)
    """Content-IDs of the message parts served for `cid:` references."""

    def network_requests(self) -> list[Request]:
        """http(s) requests other than those to the message's own (fake) origin."""
        return [
            r
            for r in self.requests
            if r.url.lower().startswith(("http://", "https://")) and _host(r.url) != DOCUMENT_HOST
        ]

    def own_origin_requests(self) -> list[Request]:
        """Relative URLs that resolved against the message document (no base href): a mail
        client resolves them against nothing remote. Includes the favicon Chromium asks for."""
        return [r for r in self.requests if _host(r.url) == DOCUMENT_HOST]


def _host(url: str) -> str:
    return url.partition("://")[2].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower()


@dataclass
class Page:
    """An HTML document to render with the message parts its `cid:` references may load:
    Content-ID (without angle brackets) -> (content type, bytes)."""

    html: str
    parts: dict[str, tuple[str, bytes]] = field(default_factory=dict)


_CID = re.compile(r"""(?i)\bcid:([^\s"'()<>\\]+)""")
_CID_BYTES = re.compile(rb"""(?i)\bcid:([^\s"'()<>\\]+)""")


def rewrite_cid(text: str) -> str:
    """Every `cid:ID` in `text` (attribute values, CSS url()) as a URL under `CID_PREFIX`."""
    return _CID.sub(lambda m: CID_PREFIX + quote(unquote(m.group(1)), safe=""), text)


def _rewrite_cid_bytes(data: bytes) -> bytes:
    return _CID_BYTES.sub(
        lambda m: (CID_PREFIX + quote(unquote(m.group(1).decode("latin-1")), safe="")).encode(),
        data,
    )


def _png(size: int) -> bytes:
    """A fully transparent RGBA PNG of size x size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + b"\0" * 4 * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PLACEHOLDER_PNG = _png(PLACEHOLDER_SIZE)


@dataclass
class _Slot:
    """One render in progress on one tab."""

    result: Render
    document: bytes
    started: float
    deadline: float
    parts: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    snapshot_id: int = 0
    """The DOMSnapshot.captureSnapshot command in flight (0: none)."""
    snapshot_deadline: float = 0.0
    navigate_id: int = 0
    loader_id: str = ""
    blank_id: int = 0
    """The about:blank navigation that ends the render (0: not started yet)."""
    blank_loader: str = ""
    blank_deadline: float = 0.0
    inflight: set[str] = field(default_factory=set)
    announced: dict[str, dict[str, Any]] = field(default_factory=dict)
    paused: list[tuple[Request, str]] = field(default_factory=list)
    """Refused requests with their network id (to describe their initiator at the end)."""
    paused_ids: set[str] = field(default_factory=set)
    last_activity: float = 0.0


@dataclass
class _Tab:
    """A page in a browser context of its own, reused render after render.

    Requests are attributed by the frame that made them: the page's main frame id is its target
    id, and its child frames are announced on its session. Between renders the page is navigated
    to about:blank and that navigation is waited for, so the previous document is gone before
    the next one starts; what still arrives in between belongs to the previous render."""

    context: str
    target: str
    session: str
    slot: _Slot | None = None
    previous: Render | None = None
    loads: set[str] = field(default_factory=set)
    """Loader ids whose main-frame load event fired."""


class Renderer:
    """One headless Chromium, reused for many renders (a fresh browser context and page each).

    `render_many` keeps up to `concurrency` pages loading at once in that one browser: a render
    mostly waits (for the load event, then `settle` seconds of quiet), so pages overlap well, and
    attribution stays exact because each page is its own target with its own frames.

    Use as a context manager; `close()` always stops the browser and removes its profile.
    """

    def __init__(
        self,
        executable: str,
        *,
        page_timeout: float = 10.0,
        settle: float = 0.15,
        use_namespace: bool = True,
        concurrency: int = 1,
        snapshot: bool = False,
        placeholder_images: bool = False,
        serve_cid: bool = False,
    ) -> None:
        """`snapshot`: take a DOM snapshot with computed styles of every page once it settled
        (`Render.snapshot`). `placeholder_images`: answer every remote image request (after
        recording it) with a transparent 64x64 PNG instead of refusing it, so that images are
        laid out by their attributes and CSS rather than as broken images. `serve_cid`: serve
        the message parts a `Page` carries for its `cid:` references (rewritten to
        `CID_PREFIX`). Nothing of this lets a request leave the machine: all answers come from
        memory."""
        self.executable = executable
        self.snapshot = snapshot
        self.placeholder_images = placeholder_images
        self.serve_cid = serve_cid
        self.page_timeout = page_timeout
        self.settle = settle
        self.concurrency = max(1, concurrency)
        prefix, self.isolation = namespace_prefix() if use_namespace else ([], "not requested")
        self.in_namespace = bool(prefix)
        self._profile = tempfile.mkdtemp(prefix="guard-chromium-")
        self._next_id = 0
        self._responses: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._count = 0
        self._tabs: list[_Tab] = []
        self._by_frame: dict[str, _Tab] = {}
        """Every frame id seen, to the tab it lives in (frame ids are never reused)."""
        self._by_session: dict[str, _Tab] = {}
        self._orphans: list[tuple[str, Request, str]] = []
        """Refused requests from a frame not (yet) known: (frame id, request, network id)."""
        self.stray: list[str] = []
        """Requests that no render could be found for (should stay empty)."""
        self._start(prefix)

    # -- process and pipe ------------------------------------------------------------------------

    def _start(self, prefix: list[str]) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # Move the child's ends out of the way of 3/4 so the dup2 below cannot clobber them.
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def child_setup() -> None:
            _die_with_parent()
            os.dup2(hi_r, 3)  # inheritable: Chromium reads commands here
            os.dup2(hi_w, 4)  # …and writes responses and events here

        cmd = [
            *prefix,
            self.executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._profile}",
            "about:blank",
        ]
        env = dict(os.environ)
        env["HOME"] = self._profile  # the Debian wrapper looks at ~/.config/chromium
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=False,  # only 3 and 4 (and stdio) are inheritable
                preexec_fn=child_setup,  # before any thread of ours runs
                env=env,
            )
        except OSError as exc:
            raise RendererError(f"cannot start {self.executable}: {exc}") from None
        finally:
            os.close(hi_r)
            os.close(hi_w)
        self._out = os.fdopen(to_child_w, "wb", buffering=0)
        self._in = from_child_r
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        version = self.call("Browser.getVersion", timeout=30)
        self.version = str(version.get("product", "?"))
        # Layer 1: intercept every request of every target at the browser level.
        self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._in, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._events.put(None)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                with contextlib.suppress(ValueError):
                    self._events.put(json.loads(raw))

    def _send(self, method: str, params: dict[str, Any] | None, session: str | None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            self._out.write(json.dumps(msg).encode() + b"\0")
        except OSError as exc:
            raise RendererError(f"Chromium went away ({exc})") from None
        return self._next_id

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send a command and wait for its answer, handling events meanwhile."""
        msg_id = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while msg_id not in self._responses:
            if not self._pump(deadline):
                raise RendererError(f"no answer to {method} within {timeout:.0f}s")
        return _result(method, self._responses.pop(msg_id))

    def _pump(self, deadline: float) -> bool:
        """Handle one message; False when the deadline passed first."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            msg = self._events.get(timeout=remaining)
        except queue.Empty:
            return False
        if msg is None:
            raise RendererError("Chromium exited (the DevTools pipe closed)")
        if "id" in msg:
            self._responses[msg["id"]] = msg
        else:
            self._on_event(msg)
        return True

    # -- events ----------------------------------------------------------------------------------

    def _on_event(self, msg: dict[str, Any]) -> None:
        method = msg.get("method", "")
        params = msg.get("params", {})
        if method == "Fetch.requestPaused":
            self._on_paused(params, msg.get("sessionId"))
            return
        tab = self._by_session.get(str(msg.get("sessionId", "")))
        if method == "Target.attachedToTarget":
            # A child target (out-of-process frame, worker): let it run; the browser-level
            # interception already covers its requests. Announced on its page's session; an
            # out-of-process frame's target id is the frame's id.
            child = params.get("sessionId")
            if child and params.get("waitingForDebugger"):
                self._send("Runtime.runIfWaitingForDebugger", None, child)
            if tab is not None:
                self._adopt_frame(tab, str(params.get("targetInfo", {}).get("targetId", "")))
            return
        if tab is None:
            return
        if method == "Page.frameAttached":
            self._adopt_frame(tab, str(params.get("frameId", "")))
            return
        if method == "Page.lifecycleEvent":
            if params.get("name") == "load" and params.get("frameId") == tab.target:
                tab.loads.add(str(params.get("loaderId", "")))
                if tab.slot is not None:
                    tab.slot.last_activity = time.monotonic()
            return
        slot = tab.slot
        if slot is None:
            return
        if method == "Network.requestWillBeSent":
            self._adopt_frame(tab, str(params.get("frameId", "")))
            request_id = str(params.get("requestId", ""))
            if request_id not in slot.paused_ids:
                slot.inflight.add(request_id)
            slot.announced[request_id] = params
            if _host(str(params.get("request", {}).get("url", ""))) != DOCUMENT_HOST:
                slot.last_activity = time.monotonic()
        elif method in ("Network.loadingFailed", "Network.loadingFinished"):
            slot.inflight.discard(str(params.get("requestId", "")))
            slot.last_activity = time.monotonic()

    def _adopt_frame(self, tab: _Tab, frame: str) -> None:
        """`frame` lives in `tab`; requests it made before we knew are handed over."""
        if not frame or frame in self._by_frame:
            return
        self._by_frame[frame] = tab
        if any(f == frame for f, _, _ in self._orphans):
            mine = [(r, n) for f, r, n in self._orphans if f == frame]
            self._orphans = [o for o in self._orphans if o[0] != frame]
            for record, network_id in mine:
                self._book(tab, frame, record, network_id)

    def _on_paused(self, params: dict[str, Any], session: str | None) -> None:
        request_id = params["requestId"]
        request = params.get("request", {})
        url = str(request.get("url", ""))
        frame = str(params.get("frameId", ""))
        kind = str(params.get("resourceType", ""))
        tab = self._by_frame.get(frame)
        slot = tab.slot if tab is not None else None
        if (
            tab is not None
            and slot is not None
            and slot.document
            and url == slot.result.url
            and kind == "Document"
            and frame == tab.target
        ):
            document, slot.document = slot.document, b""  # served once: a reload is recorded
            self._send(
                "Fetch.fulfillRequest",
                {
                    "requestId": request_id,
                    "responseCode": 200,
                    "responseHeaders": [
                        {"name": "Content-Type", "value": "text/html; charset=utf-8"},
                        {"name": "Cache-Control", "value": "no-store"},
                    ],
                    "body": base64.b64encode(document).decode("ascii"),
                },
                session,
            )
            return
        served = self._answer_from_memory(slot, url, kind, request_id, session)
        if not served:
            # Refuse first, book-keep after: nothing is ever continued.
            self._send(
                "Fetch.failRequest", {"requestId": request_id, "errorReason": BLOCK_ERROR}, session
            )
        record = Request(url=url, resource_type=kind, method=str(request.get("method", "GET")))
        network_id = str(params.get("networkId", ""))
        if tab is None:
            self._orphans.append((frame, record, network_id))
        else:
            self._book(tab, frame, record, network_id)

    def _answer_from_memory(
        self, slot: _Slot | None, url: str, kind: str, request_id: str, session: str | None
    ) -> bool:
        """Answer a paused request from memory when asked to (a cid: part of the message, the
        placeholder image); False when it is to be refused."""
        body: bytes | None = None
        content_type = ""
        if self.serve_cid and slot is not None and url.startswith(CID_PREFIX):
            cid = unquote(url[len(CID_PREFIX) :].split("?", 1)[0].split("#", 1)[0])
            part = slot.parts.get(cid) or slot.parts.get(cid.lower())
            if part is not None:
                content_type, body = part
                if content_type.startswith("text/") or "xml" in content_type:
                    body = _rewrite_cid_bytes(body)
                slot.result.served.append(cid)
        elif (
            self.placeholder_images
            and kind == "Image"
            and url.lower().startswith(("http://", "https://"))
            and _host(url) != DOCUMENT_HOST
        ):
            content_type, body = "image/png", PLACEHOLDER_PNG
        if body is None:
            return False
        self._send(
            "Fetch.fulfillRequest",
            {
                "requestId": request_id,
                "responseCode": 200,
                "responseHeaders": [
                    {"name": "Content-Type", "value": content_type or "application/octet-stream"},
                    {"name": "Cache-Control", "value": "no-store"},
                ],
                "body": base64.b64encode(body).decode("ascii"),
            },
            session,
        )
        return True

    def _book(self, tab: _Tab, frame: str, record: Request, network_id: str) -> None:
        record.main_frame = record.resource_type == "Document" and frame == tab.target
        slot = tab.slot
        if slot is None:
            if tab.previous is None:
                self.stray.append(record.url)
                return
            # Between two renders of this tab: only the previous page can have made it.
            record.initiator = "late"
            tab.previous.requests.append(record)
            return
        slot.result.requests.append(record)
        slot.paused.append((record, network_id))
        slot.paused_ids.add(network_id)
        slot.inflight.discard(network_id)  # refused: it is over
        if _host(record.url) != DOCUMENT_HOST:  # not the favicon Chromium asks for after load
            slot.last_activity = time.monotonic()

    # -- rendering -------------------------------------------------------------------------------

    def _open_tab(self) -> _Tab:
        """One page in a fresh browser context; its cache is off, and failed requests are never
        cached anyway. Scripts are off as in a mail client."""
        context = self.call("Target.createBrowserContext", {"disposeOnDetach": True})
        target = self.call(
            "Target.createTarget",
            {"url": "about:blank", "browserContextId": context["browserContextId"]},
        )["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        tab = _Tab(str(context["browserContextId"]), str(target), str(session["sessionId"]))
        self._by_session[tab.session] = tab
        self._by_frame[tab.target] = tab  # the main frame's id is the target's id
        for method, params in (
            ("Page.enable", None),
            ("Page.setLifecycleEventsEnabled", {"enabled": True}),
            ("Network.enable", None),
            ("Network.setCacheDisabled", {"cacheDisabled": True}),
            ("Emulation.setScriptExecutionDisabled", {"value": True}),
            (
                "Target.setAutoAttach",
                {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True},
            ),
        ):
            self.call(method, params, tab.session)
        self._tabs.append(tab)
        return tab

    def _begin(self, tab: _Tab, page: str | Page) -> None:
        """Start rendering `page` on `tab` (navigation sent, not waited for)."""
        parts: dict[str, tuple[str, bytes]] = {}
        if isinstance(page, Page):
            html, parts = page.html, page.parts
            if self.serve_cid:
                html = rewrite_cid(html)
        else:
            html = page
        self._count += 1
        started = time.monotonic()
        result = Render(url=f"http://{DOCUMENT_HOST}/{self._count}/message.html")
        # A UTF-8 BOM wins over any <meta charset> in the part: the text is already decoded.
        document = b"\xef\xbb\xbf" + html.encode("utf-8", "surrogatepass")
        slot = _Slot(result, document, started, started + self.page_timeout, parts)
        slot.last_activity = started
        tab.slot, tab.previous = slot, None
        tab.loads.clear()
        slot.navigate_id = self._send("Page.navigate", {"url": result.url}, tab.session)

    def _advance(self, tab: _Tab, now: float) -> Render | None:
        """Move `tab`'s render on; its result once the render is over.

        A render's page is done when its load event fired, no request it announced is still
        open, and nothing happened for `settle` seconds (a meta refresh, late fonts and the
        favicon come after the load event), or when `page_timeout` ran out (`timed_out`). Then
        the tab goes to about:blank (still recording: whatever unloading triggers belongs to
        this page), and the render is over once about:blank has loaded (or after 5 s)."""
        slot = tab.slot
        assert slot is not None
        for attr in ("navigate_id", "blank_id"):
            msg_id = getattr(slot, attr)
            if msg_id and msg_id in self._responses:
                answer = _result("Page.navigate", self._responses.pop(msg_id))
                setattr(slot, attr, 0)
                loader = str(answer.get("loaderId", ""))
                if attr == "navigate_id":
                    slot.loader_id = loader
                else:
                    slot.blank_loader = loader
        if slot.snapshot_id:
            answer = self._responses.pop(slot.snapshot_id, None)
            if answer is None and now < slot.snapshot_deadline:
                return None
            slot.snapshot_id = 0
            if answer is None:
                slot.result.snapshot_error = "no DOM snapshot within 10s"
            elif "error" in answer:
                slot.result.snapshot_error = str(answer["error"].get("message"))
            else:
                slot.result.snapshot = answer.get("result")
            self._to_blank(tab, slot, now)
            return None
        if not slot.blank_deadline:
            loaded = bool(slot.loader_id) and slot.loader_id in tab.loads
            timed_out = now >= slot.deadline
            if not timed_out and not (
                loaded and not slot.inflight and now - slot.last_activity >= self.settle
            ):
                return None
            slot.result.timed_out = timed_out
            slot.result.load_fired = loaded
            if self.snapshot:
                slot.snapshot_deadline = now + 10
                slot.snapshot_id = self._send(
                    "DOMSnapshot.captureSnapshot",
                    {"computedStyles": list(SNAPSHOT_STYLES)},
                    tab.session,
                )
                return None
            self._to_blank(tab, slot, now)
            return None
        if not (slot.blank_loader and slot.blank_loader in tab.loads) and now < slot.blank_deadline:
            return None
        return self._finish(tab, slot)

    def _to_blank(self, tab: _Tab, slot: _Slot, now: float) -> None:
        """End the page: navigate its tab to about:blank (still recording)."""
        slot.blank_deadline = now + 5
        slot.blank_id = self._send("Page.navigate", {"url": "about:blank"}, tab.session)

    def _finish(self, tab: _Tab, slot: _Slot) -> Render:
        result = slot.result
        tab.slot, tab.previous = None, result
        tab.loads.clear()
        for record, network_id in slot.paused:
            record.initiator = _describe_initiator(slot.announced.get(network_id, {}))
        for request_id, params in slot.announced.items():
            url = str(params.get("request", {}).get("url", ""))
            if request_id in slot.paused_ids or url == result.url:
                continue
            if url.lower().startswith(("http://", "https://")):
                result.requests.append(
                    Request(
                        url=url,
                        resource_type=str(params.get("type", "")),
                        initiator=_describe_initiator(params),
                        intercepted=False,
                    )
                )
        result.seconds = time.monotonic() - slot.started
        return result

    def render(self, html: str) -> Render:
        """Render one HTML document (a decoded text/html part) and return what it tried to load."""
        return self.render_many([html])[0]

    def render_many(self, documents: Iterable[str | Page]) -> list[Render]:
        """Render each HTML document (decoded text/html parts), up to `concurrency` at once (one
        per tab), and return what each tried to load, in order. A render that needed its whole
        `page_timeout` comes back with `timed_out` set."""
        waiting = deque(enumerate(documents))
        results: dict[int, Render] = {}
        running: dict[int, int] = {}  # tab index -> document index
        try:
            while waiting or running:
                for t in range(self.concurrency):
                    if t not in running and waiting:
                        tab = self._tabs[t] if t < len(self._tabs) else self._open_tab()
                        index, html = waiting.popleft()
                        self._begin(tab, html)
                        running[t] = index
                now = time.monotonic()
                for t, index in list(running.items()):
                    done = self._advance(self._tabs[t], now)
                    if done is not None:
                        results[index] = done
                        del running[t]
                if running:
                    wakes = [now + self.settle / 2]
                    for t in running:
                        slot = self._tabs[t].slot
                        assert slot is not None
                        wakes.append(
                            slot.blank_deadline
                            or (slot.snapshot_deadline if slot.snapshot_id else slot.deadline)
                        )
                    self._pump(min(wakes))
        finally:
            # Requests from frames no tab ever claimed could not be attributed: stray.
            self.stray += [
                f"{record.url} (frame {frame or '?'})" for frame, record, _ in self._orphans
            ]
            self._orphans.clear()
        return [results[i] for i in sorted(results)]

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(RendererError, OSError):
                self._send("Browser.close", None, None)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            with contextlib.suppress(OSError):
                self._out.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _result(method: str, answer: dict[str, Any]) -> dict[str, Any]:
    if "error" in answer:
        raise RendererError(f"{method}: {answer['error'].get('message')}")
    result: dict[str, Any] = answer.get("result", {})
    return result


def _describe_initiator(announced: dict[str, Any]) -> str:
    """`parser message:12`, `parser https://…/mail.css:3`, `parser cid:style@x:1` (a cid: part
    served from the message), `other`, … from requestWillBeSent."""
    initiator = announced.get("initiator", {})
    kind = str(initiator.get("type", ""))
    where = str(initiator.get("url", ""))
    if where.startswith(CID_PREFIX):
        where = "cid:" + unquote(where[len(CID_PREFIX) :])  # a part of the message it served
    elif _host(where) == DOCUMENT_HOST:
        where = "message"
    line = initiator.get("lineNumber")
    text = kind
    if where:
        text += f" {where}"
        if isinstance(line, int):
            text += f":{line + 1}"
    return text


@contextlib.contextmanager
def chromium(executable: str | None = None, **kwargs: Any) -> Iterator[Renderer]:
    """A started Renderer (raises RendererError when there is no Chromium to start)."""
    path = executable or find_chromium()
    if path is None:
        raise RendererError("no Chromium found (install Debian's `chromium`)")
    renderer = Renderer(path, **kwargs)
    try:
        yield renderer
    finally:
        renderer.close()


def browser_for_tests(**kwargs: Any) -> Iterator[Renderer]:
    """A started Renderer for a module-scoped pytest fixture (`yield from`): the test is skipped
    where there is no Chromium, and fails under CI=true, which must have one."""
    import pytest  # here: the renderer itself also serves bench/, which runs without pytest

    path = find_chromium()
    if path is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        with chromium(path, **kwargs) as renderer:
            yield renderer
    except RendererError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"Chromium ({path}) could not be driven: {exc}", pytrace=False)


# -- the layout oracle: image-loading elements as the browser laid them out ----------------------

PIXEL_MAX = 3
"""An element at most this many CSS pixels both ways (or 0 either way) is a pixel by size."""

_URL_IN_CSS = re.compile(r"""url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)\s]*))\s*\)""")
_IMAGE_STYLES = ("background-image", "list-style-image", "border-image-source", "content")


@dataclass(frozen=True)
class ImageBox:
    """One image load of one element, with the element's box and visibility as laid out."""

    url: str
    """Absolute URL, as the browser resolved it (a cid: part shows as a `CID_PREFIX` URL)."""
    element: str
    """`<img src>`, `<video poster>`, `<image href> (SVG)`, `<td> background-image`, …"""
    width: float | None
    height: float | None
    """In CSS px: for an image element, its computed width and height (the content box; the
    border box where computed style gives no px value): with the placeholder image, what its
    attributes and CSS give, else 64; for a CSS image (background…), the border box it paints.
    None when the element has no box (display:none)."""
    hidden: str
    """Why it is not shown ("" when shown): `display:none`, `visibility:hidden`, `opacity:0`,
    `clipped by an ancestor's overflow`, `clipped by the frame it is in`, `off-screen`,
    `in a hidden frame`."""
    box: tuple[float, float] | None = None
    """The laid-out border box (padding and border included), for reference."""
    declared: str = ""
    """The element's width/height attributes (`600x300`, `600x?`), "" when it has none: what
    says a hidden element's size when it has no box."""

    @property
    def unsized(self) -> bool:
        """Laid out at exactly the placeholder's size: nothing but the image gave it a size."""
        return self.width == PLACEHOLDER_SIZE and self.height == PLACEHOLDER_SIZE

    @property
    def small(self) -> bool:
        """At most `PIXEL_MAX` px both ways, or 0 either way (None: no box, not small)."""
        if self.width is None or self.height is None:
            return False
        w, h = self.width, self.height
        return (w <= PIXEL_MAX and h <= PIXEL_MAX) or w == 0 or h == 0

    @property
    def pixel_like(self) -> bool:
        """What a reader cannot see: a pixel by size, or hidden."""
        return self.small or bool(self.hidden)


def _css_urls(value: str) -> list[str]:
    out = []
    for m in _URL_IN_CSS.finditer(value):
        raw = next((g for g in m.groups() if g is not None), "")
        out.append(re.sub(r"\\(.)", r"\1", raw))
    return out


def image_boxes(snapshot: dict[str, Any] | None) -> list[ImageBox]:
    """Every image load of every element of a `DOMSnapshot.captureSnapshot` (taken with
    `SNAPSHOT_STYLES`), frames included: `<img>` (its current source), `<input type=image>`,
    `<video poster>`, SVG `<image>`, and CSS images (background, list-style, border-image,
    content) from computed style. Each with its laid-out box and whether it is hidden by itself,
    an ancestor (opacity, overflow clipping) or the frame it is in."""
    if not snapshot:
        return []
    strings: list[str] = snapshot.get("strings", [])

    def text(index: int) -> str:
        return strings[index] if 0 <= index < len(strings) else ""

    documents = snapshot.get("documents", [])
    # frame document index -> (parent document index, owner node index)
    owners: dict[int, tuple[int, int]] = {}
    for d, doc in enumerate(documents):
        rare = doc.get("nodes", {}).get("contentDocumentIndex", {})
        for node, child in zip(rare.get("index", []), rare.get("value", []), strict=False):
            owners[child] = (d, node)
    state: dict[int, tuple[str, tuple[float, float, float, float] | None]] = {}
    """document -> (hidden reason inherited from its frame, its frame's clip rect in page px)."""
    boxes: list[ImageBox] = []
    order = sorted(range(len(documents)), key=lambda d: _depth(d, owners))
    per_doc: dict[int, Any] = {}
    for d in order:
        per_doc[d] = _Doc(documents[d], text)
    for d in order:
        doc = per_doc[d]
        inherited, clip = "", None
        if d in owners:
            parent_doc, owner = owners[d]
            parent = per_doc[parent_doc]
            p_hidden, p_clip = state.get(parent_doc, ("", None))
            reason, rect = parent.visibility(owner, p_clip)
            inherited = p_hidden or ("in a hidden frame" if reason else "")
            clip = rect
            if rect is not None:
                doc.offset = (rect[0], rect[1])
        state[d] = (inherited, clip)
        boxes += doc.images(inherited, clip)
    return boxes


def _depth(d: int, owners: dict[int, tuple[int, int]]) -> int:
    depth = 0
    while d in owners and depth < 32:
        d = owners[d][0]
        depth += 1
    return depth


class _Doc:
    """One document of a DOM snapshot, indexed for the oracle."""

    def __init__(self, doc: dict[str, Any], text: Any) -> None:
        self.text = text
        nodes = doc.get("nodes", {})
        self.parent: list[int] = nodes.get("parentIndex", [])
        self.name: list[str] = [text(i).lower() for i in nodes.get("nodeName", [])]
        self.element: list[bool] = [t == 1 for t in nodes.get("nodeType", [])]
        self.attrs: list[dict[str, str]] = []
        for flat in nodes.get("attributes", []):
            pairs = {}
            for k in range(0, len(flat) - 1, 2):
                pairs[text(flat[k]).lower()] = text(flat[k + 1])
            self.attrs.append(pairs)
        current = nodes.get("currentSourceURL", {})
        self.current = {
            n: text(v)
            for n, v in zip(current.get("index", []), current.get("value", []), strict=False)
        }
        self.base = text(doc.get("baseURL", -1)) or text(doc.get("documentURL", -1))
        layout = doc.get("layout", {})
        self.layout: dict[int, int] = {}
        for li, node in enumerate(layout.get("nodeIndex", [])):
            self.layout.setdefault(node, li)
        self.styles: list[list[int]] = layout.get("styles", [])
        self.bounds: list[list[float]] = layout.get("bounds", [])
        self.offset = (0.0, 0.0)

    def style(self, node: int, name: str) -> str:
        li = self.layout.get(node)
        if li is None or li >= len(self.styles):
            return ""
        values = self.styles[li]
        at = SNAPSHOT_STYLES.index(name)
        return self.text(values[at]) if at < len(values) else ""

    def rect(self, node: int) -> tuple[float, float, float, float] | None:
        li = self.layout.get(node)
        if li is None or li >= len(self.bounds) or len(self.bounds[li]) < 4:
            return None
        x, y, w, h = self.bounds[li][:4]
        return (x + self.offset[0], y + self.offset[1], w, h)

    def visibility(
        self, node: int, clip: tuple[float, float, float, float] | None
    ) -> tuple[str, tuple[float, float, float, float] | None]:
        """(why `node` is hidden or "", its visible rect after the clipping of its ancestors)."""
        rect = self.rect(node)
        if rect is None:
            return "display:none", None
        if self.style(node, "visibility") in ("hidden", "collapse"):
            return "visibility:hidden", rect
        visible = rect if clip is None else _intersect(rect, clip)
        if (visible[2] <= 0 or visible[3] <= 0) and rect[2] > 0 and rect[3] > 0:
            return "clipped by the frame it is in", visible
        at = node
        for _ in range(512):
            if at < 0:
                break
            if _opacity(self.style(at, "opacity")) == 0:
                return "opacity:0", rect
            if at != node and self.name[at] not in ("html", "body") and at in self.layout:
                ox, oy = self.style(at, "overflow-x"), self.style(at, "overflow-y")
                box = self.rect(at)
                if box is not None and (ox not in ("visible", "") or oy not in ("visible", "")):
                    visible = _intersect(visible, box, x=ox != "visible", y=oy != "visible")
            at = self.parent[at] if at < len(self.parent) else -1
        if (visible[2] <= 0 or visible[3] <= 0) and (rect[2] > 0 and rect[3] > 0):
            return "clipped by an ancestor's overflow", visible
        if rect[0] + rect[2] <= 0 or rect[1] + rect[3] <= 0:
            return "off-screen", visible
        return "", visible

    def resolve(self, url: str) -> str:
        url = url.strip()
        if not url:
            return ""
        try:
            return urljoin(self.base, url)
        except ValueError:
            return url

    def images(
        self, inherited: str, clip: tuple[float, float, float, float] | None
    ) -> list[ImageBox]:
        out: list[ImageBox] = []
        for node, name in enumerate(self.name):
            if node >= len(self.element) or not self.element[node]:
                continue  # text nodes carry their parent's computed style
            attrs = self.attrs[node] if node < len(self.attrs) else {}
            loads: list[tuple[str, str]] = []
            if name == "img":
                src = self.current.get(node) or self.resolve(attrs.get("src", ""))
                if src:
                    loads.append((src, "<img src>"))
            elif name == "input" and attrs.get("type", "").lower() == "image":
                if attrs.get("src"):
                    loads.append((self.resolve(attrs["src"]), "<input type=image src>"))
            elif name == "video" and attrs.get("poster"):
                loads.append((self.resolve(attrs["poster"]), "<video poster>"))
            elif name == "image" and (attrs.get("href") or attrs.get("xlink:href")):
                href = attrs.get("href") or attrs.get("xlink:href", "")
                loads.append((self.resolve(href), "<image href> (SVG)"))
            if node in self.layout:
                tag = name if not name.startswith("::") else f"{self._owner_name(node)} {name}"
                for prop in _IMAGE_STYLES:
                    for url in _css_urls(self.style(node, prop)):
                        loads.append((url, f"<{tag}> {prop}"))
            if not loads:
                continue
            reason, _ = self.visibility(node, clip)
            hidden = inherited or reason
            rect = self.rect(node)
            css_w, css_h = self.style(node, "width"), self.style(node, "height")
            width = _px(css_w, rect[2]) if rect is not None else None
            height = _px(css_h, rect[3]) if rect is not None else None
            w_attr, h_attr = attrs.get("width", "").strip(), attrs.get("height", "").strip()
            declared = f"{w_attr or '?'}x{h_attr or '?'}" if (w_attr or h_attr) else ""
            for url, element in loads:
                if not url:
                    continue
                # A CSS image paints the border box (background-clip: border-box), an image
                # element its content box.
                css_image = element.endswith(_IMAGE_STYLES)
                out.append(
                    ImageBox(
                        url=url,
                        element=element,
                        width=rect[2] if css_image and rect is not None else width,
                        height=rect[3] if css_image and rect is not None else height,
                        hidden=hidden,
                        box=None if rect is None else (rect[2], rect[3]),
                        declared=declared,
                    )
                )
        return out

    def _owner_name(self, node: int) -> str:
        parent = self.parent[node] if node < len(self.parent) else -1
        return self.name[parent] if parent >= 0 else "?"


def _px(value: str, fallback: float) -> float:
    if value.endswith("px"):
        try:
            return float(value[:-2])
        except ValueError:
            pass
    return fallback


def _opacity(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 1.0


def _intersect(
    a: tuple[float, float, float, float],
    b: tuple[float, float, float, float],
    *,
    x: bool = True,
    y: bool = True,
) -> tuple[float, float, float, float]:
    """`a` clipped by `b` along the axes asked for (overflow-x / overflow-y)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    if x:
        left, right = max(ax, bx), min(ax + aw, bx + bw)
        ax, aw = left, max(0.0, right - left)
    if y:
        top, bottom = max(ay, by), min(ay + ah, by + bh)
        ay, ah = top, max(0.0, bottom - top)
    return (ax, ay, aw, ah)
