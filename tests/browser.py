"""A headless Chromium driven over the DevTools protocol (websocket-client, already in the lock): load a page,
collect its console errors and uncaught exceptions, evaluate JavaScript, take a screenshot. Used by the report's
browser test; ``find_chromium`` says where the browser is, or None."""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import websocket

# Where the browser tests leave their screenshots (CI keeps the folder).
ARTIFACTS = os.environ.get("MTL_TEST_ARTIFACTS", os.path.join(os.path.dirname(__file__), "..", "test-artifacts"))


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class Browser:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="mtl-chromium-")
        self.process = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0", f"--window-size={width},{height}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # No Origin header: Chromium 111 and later refuse a DevTools connection from an origin not allowed by
        # --remote-allow-origins, and websocket-client sends one by default.
        self.socket = websocket.create_connection(self._browser_endpoint(), timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def _browser_endpoint(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if match := re.search(r"DevTools listening on (ws://\S+)", line):
                return match.group(1)
            if not line and self.process.poll() is not None:
                break
        raise RuntimeError("Chromium did not start its DevTools endpoint")

    def call(self, method: str, session: bool = False, **params) -> dict:
        """Sends one DevTools command and returns its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def load(self, url: str, timeout: float = 30) -> None:
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {timeout} s")
            self.events.append(json.loads(self.socket.recv()))

    def errors(self) -> list[str]:
        """Console errors, log entries of level error and uncaught exceptions seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: str) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.socket.close()
        finally:
            self.process.kill()
            self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)
        return False


def visible(selector: str) -> str:
    """A JavaScript expression: the number of elements matching ``selector`` that take up space on the page."""
    return (f"Array.from(document.querySelectorAll({json.dumps(selector)})).filter(e => {{"
            "const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && "
            "getComputedStyle(e).visibility !== 'hidden'; }).length")



