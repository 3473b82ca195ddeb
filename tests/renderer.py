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
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

DOCUMENT_HOST = "guard-render.invalid"
DOCUMENT_URL = f"http://{DOCUMENT_HOST}/message.html"
BLOCK_ERROR = "BlockedByClient"

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
class _Pending:
    """Book-keeping for the render in progress."""

    result: Render
    loader_id: str = ""
    inflight: set[str] = field(default_factory=set)
    announced: dict[str, dict[str, Any]] = field(default_factory=dict)
    paused_ids: set[str] = field(default_factory=set)
    last_activity: float = 0.0


class Renderer:
    """One headless Chromium, reused for many renders (one fresh browser context each).

    Use as a context manager; `close()` always stops the browser and removes its profile.
    """

    def __init__(
        self,
        executable: str,
        *,
        page_timeout: float = 10.0,
        settle: float = 0.15,
        use_namespace: bool = True,
    ) -> None:
        self.executable = executable
        self.page_timeout = page_timeout
        self.settle = settle
        prefix, self.isolation = namespace_prefix() if use_namespace else ([], "not requested")
        self.in_namespace = bool(prefix)
        self._profile = tempfile.mkdtemp(prefix="guard-chromium-")
        self._next_id = 0
        self._responses: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: _Pending | None = None
        self._previous: Render | None = None
        self._loaded: set[str] = set()
        self._count = 0
        self._document: bytes = b""
        self._session: str | None = None
        self._main_frame: str | None = None
        self.stray: list[str] = []
        """Requests refused while no render was in progress (should stay empty)."""
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
        answer = self._responses.pop(msg_id)
        if "error" in answer:
            raise RendererError(f"{method}: {answer['error'].get('message')}")
        result: dict[str, Any] = answer.get("result", {})
        return result

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
        pending = self._pending
        if method == "Fetch.requestPaused":
            self._on_paused(params, msg.get("sessionId"))
        elif method == "Target.attachedToTarget":
            # A child target (out-of-process frame, worker): let it run; the browser-level
            # interception already covers its requests.
            child = params.get("sessionId")
            if child and params.get("waitingForDebugger"):
                self._send("Runtime.runIfWaitingForDebugger", None, child)
        elif msg.get("sessionId") != self._session:
            return
        elif method == "Page.lifecycleEvent":
            if params.get("name") == "load" and params.get("frameId") == self._main_frame:
                self._loaded.add(str(params.get("loaderId", "")))
                if pending is not None:
                    pending.last_activity = time.monotonic()
        elif pending is None:
            return
        elif method == "Network.requestWillBeSent":
            request_id = str(params.get("requestId", ""))
            if request_id not in pending.paused_ids:
                pending.inflight.add(request_id)
            pending.announced[request_id] = params
            if _host(str(params.get("request", {}).get("url", ""))) != DOCUMENT_HOST:
                pending.last_activity = time.monotonic()
        elif method in ("Network.loadingFailed", "Network.loadingFinished"):
            pending.inflight.discard(str(params.get("requestId", "")))
            pending.last_activity = time.monotonic()

    def _on_paused(self, params: dict[str, Any], session: str | None) -> None:
        request_id = params["requestId"]
        request = params.get("request", {})
        url = str(request.get("url", ""))
        pending = self._pending
        if (
            pending is not None
            and url == pending.result.url
            and params.get("resourceType") == "Document"
            and self._document
        ):
            document, self._document = self._document, b""  # served once: a reload is recorded
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
        # Refuse first, book-keep after: nothing is ever continued.
        self._send(
            "Fetch.failRequest", {"requestId": request_id, "errorReason": BLOCK_ERROR}, session
        )
        record = Request(
            url=url,
            resource_type=str(params.get("resourceType", "")),
            method=str(request.get("method", "GET")),
            initiator=str(params.get("networkId", "")),  # described when the render ends
            main_frame=params.get("frameId") == self._main_frame
            and params.get("resourceType") == "Document",
        )
        if pending is not None:
            pending.result.requests.append(record)
            pending.paused_ids.add(record.initiator)
            pending.inflight.discard(record.initiator)  # refused: it is over
            if _host(url) != DOCUMENT_HOST:  # not the favicon Chromium asks for after load
                pending.last_activity = time.monotonic()
        elif self._previous is not None:
            # Renders run one at a time and each ends only after its page was replaced by
            # about:blank, so a late arrival can only be the previous page's.
            self._previous.requests.append(record)
            record.initiator = "late"
        else:
            self.stray.append(url)

    # -- rendering -------------------------------------------------------------------------------

    def _open_page(self) -> None:
        """One page in one fresh browser context, reused for every render (navigated to a new
        path each time, and to about:blank in between); its cache is off, and failed requests
        are never cached anyway."""
        context = self.call("Target.createBrowserContext", {"disposeOnDetach": True})
        target = self.call(
            "Target.createTarget",
            {"url": "about:blank", "browserContextId": context["browserContextId"]},
        )["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = session["sessionId"]
        self._main_frame = target  # the main frame's id is the target's id
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
            self.call(method, params, self._session)

    def _navigate(self, url: str, deadline: float) -> str:
        answer = self.call(
            "Page.navigate",
            {"url": url},
            self._session,
            timeout=max(0.1, deadline - time.monotonic()),
        )
        return str(answer.get("loaderId", ""))

    def render(self, html: str) -> Render:
        """Render one HTML document (a decoded text/html part) and return what it tried to load.

        Done when the page's own load event has fired, no request it announced is still open,
        and nothing happened for `settle` seconds (a meta refresh, late fonts and the favicon
        come after the load event); or when `page_timeout` runs out (`timed_out`)."""
        started = time.monotonic()
        if self._session is None:
            self._open_page()
        self._count += 1
        result = Render(url=f"http://{DOCUMENT_HOST}/{self._count}/message.html")
        pending = _Pending(result, last_activity=started)
        self._pending, self._previous = pending, None
        # A UTF-8 BOM wins over any <meta charset> in the part: the text is already decoded.
        self._document = b"\xef\xbb\xbf" + html.encode("utf-8", "surrogatepass")
        deadline = started + self.page_timeout
        try:
            pending.loader_id = self._navigate(result.url, deadline)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    result.timed_out = True
                    break
                result.load_fired = pending.loader_id in self._loaded
                if (
                    result.load_fired
                    and not pending.inflight
                    and now - pending.last_activity >= self.settle
                ):
                    break
                self._pump(min(deadline, now + self.settle / 2))
            # Replace the page (still recording: whatever unloading triggers belongs to it) and
            # wait for about:blank to load, so that this page is gone before the next begins.
            blank_deadline = time.monotonic() + 5
            blank = self._navigate("about:blank", blank_deadline)
            while blank not in self._loaded and self._pump(blank_deadline):
                pass
        finally:
            self._pending, self._previous = None, result
            self._document = b""
            self._loaded.clear()
        seen = pending.paused_ids
        for req in result.requests:
            req.initiator = _describe_initiator(pending.announced.get(req.initiator, {}))
        for request_id, params in pending.announced.items():
            url = str(params.get("request", {}).get("url", ""))
            if request_id in seen or url == result.url:
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
        result.seconds = time.monotonic() - started
        return result

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


def _describe_initiator(announced: dict[str, Any]) -> str:
    """`parser message:12`, `parser https://…/mail.css:3`, `other`, … from requestWillBeSent."""
    initiator = announced.get("initiator", {})
    kind = str(initiator.get("type", ""))
    where = str(initiator.get("url", ""))
    if _host(where) == DOCUMENT_HOST:
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
