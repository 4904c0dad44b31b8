"""A real Prometheus server (Debian's `prometheus` package) on 127.0.0.1:
a free port, its own storage directory, a 1 s scrape and rule evaluation
interval, scraping the given targets. Queries go through its HTTP API
(/api/v1/query, /api/v1/targets, /api/v1/rules). Stopped by PID."""

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request

from common import START_TIMEOUT, STOP_TIMEOUT, add_cleanup, closed_port, require_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALERTS = os.path.join(ROOT, "docs", "prometheus", "alerts.yml")


class Prometheus:
    """Prometheus scraping `targets` ("host:port", metrics path /metrics) as
    job `job`, with `rule_files` loaded."""

    def __init__(self, testcase, workdir, targets, job="tlsedge", rule_files=()):
        binary = require_tool("prometheus")
        self.dir = os.path.join(workdir, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": list(rule_files),
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
        }
        config_path = os.path.join(self.dir, "prometheus.yml")
        with open(config_path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config_path}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        add_cleanup(testcase, self.stop)
        self._wait_ready()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _get(self, path, timeout=5):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.status, r.read()

    def _wait_ready(self, timeout=START_TIMEOUT * 2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"prometheus exited with status {self.proc.returncode}\n{self.log()}")
            try:
                if self._get("/-/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready after {timeout}s\n{self.log()}")

    def api(self, path, **params):
        """The `data` of a successful /api/v1/<path> answer."""
        query = "?" + urllib.parse.urlencode(params) if params else ""
        _, body = self._get(f"/api/v1/{path}{query}")
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise AssertionError(f"/api/v1/{path}{query}: {answer}")
        return answer["data"]

    def query(self, promql):
        """[(labels dict, float value)] of an instant vector query."""
        data = self.api("query", query=promql)
        if data["resultType"] != "vector":
            raise AssertionError(f"{promql}: not a vector: {data}")
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def wait_for(self, promql, predicate, timeout=30):
        """Polls `promql` until predicate(result) holds; returns the result."""
        deadline = time.monotonic() + timeout
        result = None
        while time.monotonic() < deadline:
            result = self.query(promql)
            if predicate(result):
                return result
            time.sleep(0.25)
        raise AssertionError(f"{promql}: still {result} after {timeout}s\n{self.log()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
