"""Headless Chromium (Debian's chromium package) driven over the DevTools protocol, to load a
local HTML file as a person's browser would: console messages and exceptions are collected,
the page's DOM and layout can be queried, and screenshots taken.

The DevTools endpoint listens on 127.0.0.1 only; the page comes from a file:// URL, and Chromium
is told not to resolve or fetch anything else (no background networking, every host name
unresolvable, a proxy nobody listens on)."""

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket

from localfleet import netns

NO_NETWORK = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-default-apps", "--disable-extensions", "--no-first-run",
              "--no-default-browser-check", "--disable-domain-reliability",
              "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
              "--proxy-bypass-list=<-loopback>"]


def chromium_path():
    """The chromium binary; installed from Debian's packages (as root) when missing (hack/test
    installs it before pytest). apt runs in the namespace the test process started in, since it
    may already be inside a fleet's."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("chromium is not installed and this is not root: apt-get install chromium")
    # The namespace this process started in (a test process may be inside a fleet's by now).
    original = netns.original_namespace_fd()
    outside = ["nsenter", f"--net=/proc/self/fd/{original}"] if original is not None else []
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        proc = subprocess.run(outside + command, env=env, capture_output=True, text=True,
                              check=False, pass_fds=(original,) if original is not None else ())
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return shutil.which("chromium")


class DevToolsError(AssertionError):
    pass


class Browser:
    """One headless Chromium with one page, at a laptop's window size by default."""

    def __init__(self, workdir, width=1366, height=900, timeout=60):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.events = []
        self._next_id = 0
        profile = self.workdir / "profile"
        self.log = (self.workdir / "chromium.log").open("w")
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={width},{height}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", *NO_NETWORK, "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            port = self._port(profile / "DevToolsActivePort")
            self.ws = websocket.create_connection(self._page_socket(port), timeout=timeout,
                                                  suppress_origin=True)
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self.send("Emulation.setDeviceMetricsOverride",
                      width=width, height=height, deviceScaleFactor=1, mobile=False)
        except Exception:
            self.close()
            raise

    def _port(self, active_port):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevToolsError(f"chromium exited with {self.proc.returncode}: {self.log_text()}")
            if active_port.exists() and active_port.read_text().strip():
                return int(active_port.read_text().split()[0])
            time.sleep(0.1)
        raise DevToolsError(f"chromium did not open its DevTools port: {self.log_text()}")

    def _page_socket(self, port):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                pages = [t for t in json.load(answer) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise DevToolsError("chromium has no page")

    def log_text(self):
        self.log.flush()
        return (self.workdir / "chromium.log").read_text(errors="replace")[-3000:]

    def send(self, method, **params):
        self._next_id += 1
        ident = self._next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for_event(self, method):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv()))
        raise DevToolsError(f"no {method} within {self.timeout}s")

    def open(self, path):
        """Load a local file and wait until it has loaded."""
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.send("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (run by the test, not the page)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self):
        """Console errors, uncaught exceptions and errors logged by the browser for the page."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                     for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                errors.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
        return errors

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1})
        data = self.send("Page.captureScreenshot", **params)["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self):
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, 15)
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, 9)
                    self.proc.wait(10)
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
