# SPDX-License-Identifier: MIT
"""What the real-server tests (test_gunicorn.py, test_uwsgi.py,
test_php_fpm.py) share: a real downstream process that is stopped and
started, HTTP (or FastCGI) clients, the server process with its readiness
wait and its log, and the outage they all run - with the figures it gives
and the checks on them.

The outage: the server's workers serve examples/python/app.py (PHP-FPM's
children examples/php/index.php, which logs alike), whose every call that
reaches for the downstream is logged (ATTEMPT_LOG). The downstream is
killed for two open periods, then started again. Calls that failed within
the first 0.75 open period reached the dead downstream before the trip;
the failures after it are probes, clustered by open period.

A breaker cannot take back a call it admitted: the calls in flight when
the downstream dies fail after their admission, and each worker has one
more admitted before it sees a failure recorded. So at most threshold +
(calls in flight host-wide) - 1 reach it before the trip: threshold +
workers - 1 for sync workers (one request at a time each), threshold +
clients - 1 for greenlet workers, which serve every client at once."""

import atexit
import dataclasses
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))


def stage(repo, parts=("bindings", "examples")):
    """A copy of what the servers' workers run - the bindings, the
    examples and the library CBSHM_LIBRARY names - that every user may
    read, as an installed deployment is; os.environ's CBSHM_LIBRARY then
    names the copy. Workers that drop to SERVICE_UID must not need to
    enter the checkout: one in /root (mode 0700 on Debian) is not the
    service user's to read. Removed at exit."""
    root = tempfile.mkdtemp(prefix="cbshm-deploy-")
    atexit.register(shutil.rmtree, root, True)
    for part in parts:
        shutil.copytree(os.path.join(repo, part), os.path.join(root, part),
                        ignore=shutil.ignore_patterns("__pycache__", "*.gem"))
    library = os.environ.get("CBSHM_LIBRARY")
    if library:
        os.mkdir(os.path.join(root, "lib"))
        copy = os.path.join(root, "lib", os.path.basename(library))
        shutil.copy(library, copy)
        os.environ["CBSHM_LIBRARY"] = copy
    for at, dirs, files in os.walk(root):
        os.chmod(at, 0o755)
        for f in files:
            path = os.path.join(at, f)
            os.chmod(path, os.stat(path).st_mode & 0o777 | 0o444)
    return root


DEPLOY = stage(REPO)
EXAMPLE = os.path.join(DEPLOY, "examples", "python")  # app.py, breakers.yaml
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
import cbshm  # noqa: E402

WORKERS, THRESHOLD, OPEN_TIMEOUT = 4, 3, 2.0
SERVICE_UID = 4242  # the workers' user in the root-master scenarios: a number, no account
CBCTL = os.environ.get("CBCTL", "cbctl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Downstream:
    """A real downstream process (downstream.py); stop() kills it, so calls
    are refused, and start() runs it again on the same port. delay: seconds
    it waits before it answers (calls overlap in a worker that can serve
    several at once)."""

    def __init__(self, status="HTTP/1.0 200 OK", delay=0.0):
        self.port, self.status, self.delay = free_port(), status, delay
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "downstream.py"),
                                      str(self.port), self.status, str(self.delay)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the downstream did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def http_get(port):
    """GET / over HTTP: (status, the X-Worker header). Raises OSError."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("X-Worker")
    finally:
        conn.close()


def fastcgi_get(script):
    """A request function that sends GET / for script over FastCGI to
    127.0.0.1:port with cgi-fcgi (libfcgi-bin), as a web server in front
    of PHP-FPM would: (status, the X-Worker header). Raises OSError when
    there is no answer."""
    def get(port):
        env = {"SCRIPT_FILENAME": script, "SCRIPT_NAME": "/" + os.path.basename(script),
               "REQUEST_METHOD": "GET", "REQUEST_URI": "/", "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1"}
        try:
            out = subprocess.run(["cgi-fcgi", "-bind", "-connect", "127.0.0.1:%d" % port],
                                 env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=10).stdout
        except subprocess.TimeoutExpired as e:
            raise OSError("cgi-fcgi: no answer in 10 s") from e
        head = out.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
        if not head[0]:
            raise OSError("cgi-fcgi: no answer")
        fields = dict(line.split(": ", 1) for line in head if ": " in line)
        # CGI: no Status field is 200.
        return int(fields.get("Status", "200").split()[0]), fields.get("X-Worker")
    return get


class Clients:
    """Threads sending GET / to the server, recording (time, status, worker, latency).
    request(port): one request, (status, worker) or OSError (http_get)."""

    def __init__(self, port, n=6, request=http_get):
        self.port, self.records, self.stopping = port, [], threading.Event()
        self.request = request
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                status, worker = self.request(self.port)
                rec = (t0, status, worker, time.monotonic() - t0)
            except OSError:
                rec = (t0, 0, None, time.monotonic() - t0)
            with self.lock:
                self.records.append(rec)
            time.sleep(0.005)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()


def downstream_calls(log):
    """The app's attempt log: (worker pid, began, ended, "ok" or "failed") a call."""
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [(int(p), float(b), float(e), how) for p, b, e, how in map(str.split, f)]


def failed_calls(log):
    """When each call that reached the downstream and failed ended."""
    return sorted(e for _, _, e, how in downstream_calls(log) if how == "failed")


def most_in_flight(log):
    """The most downstream calls one worker had in flight at once."""
    most = 0
    for pid in {c[0] for c in downstream_calls(log)}:
        edges = sorted((t, d) for p, b, e, _ in downstream_calls(log) if p == pid
                       for t, d in ((b, 1), (e, -1)))
        now = 0
        for _, d in edges:
            now += d
            most = max(most, now)
    return most


def clusters(times, gap=0.5):
    out = []
    for t in times:
        if out and t - out[-1][-1] < gap:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def trips(seg, as_user=False):
    """The downstream breaker's trip count: the one place the tests read it."""
    if not as_user:
        segment = cbshm.Segment(seg)
        try:
            return segment.snapshot("downstream").trips
        finally:
            segment.close()
    # Root maps no segment another user owns: cbctl, run as root, works on
    # it as its owner.
    out = subprocess.run([CBCTL, "-s", seg, "show", "downstream", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["trips"]


def opened(log, when):
    """How many processes opened the breaker when (app.attach_breaker), from
    the server's log."""
    return log.count("opened breaker downstream (%s)" % when)


class Server:
    """A server process started with argv in cwd, ready once it answers
    GET / on port (request: http_get); its stderr goes to a file, which
    stop() returns."""

    def __init__(self, name, argv, cwd, env, port, log_path, request=http_get):
        self.name, self.log_path = name, log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                request(port)
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("%s did not start: %s" % (name, self.stop()))
                time.sleep(0.1)

    def stop(self):
        """Stops it with SIGTERM (SIGKILL after 20 s); returns its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


@dataclasses.dataclass
class Outage:
    before_trip: int  # failed calls that reached the dead downstream before the trip
    at_death: int  # of those, the calls in flight when it died (admitted while it was up)
    probes: list  # failed calls per open period after it
    records: list  # the clients' (time, status, worker, latency)
    t_down: float
    t_up: float
    trips_before: int  # the trips counted while the downstream was up
    in_flight: int  # the most downstream calls one worker had at once
    log: str  # the server's stderr


def outage(name, argv, cwd, per_process=False, late=False, as_user=False, clients=6,
           delay=0.0, request=http_get, yaml=os.path.join(EXAMPLE, "breakers.yaml")):
    """Runs the outage under a server; returns an Outage.

    argv(port): the server's command line, serving on 127.0.0.1:port
    (with its own options for as_user: the workers' uid and gid).
    per_process: each worker keeps
    its own breaker (no segment). late: the server starts before the
    segment exists, which comes once every worker has served. as_user: the
    deployment of the README's Security section - root applies
    breakers.yaml with `owner:` a service user, and the server's workers
    run as that user. clients: client threads; delay: the downstream's
    delay before it answers. request: how a client asks the server
    (http_get, or fastcgi_get(script) for PHP-FPM); yaml: the breakers'
    configuration (examples/python/breakers.yaml)."""
    work = tempfile.mkdtemp()
    seg = "/cbshm-%s-test-%d-%d" % (name, os.getpid(), next(_serial))
    log = os.path.join(work, "attempts")
    down = Downstream(delay=delay)
    if as_user:
        os.chmod(work, 0o777)  # the workers log their attempts here
        with open(yaml) as f:
            text = "owner: %d\n" % SERVICE_UID + f.read()
        yaml = os.path.join(work, "breakers.yaml")
        with open(yaml, "w") as f:
            f.write(text)
        subprocess.run([CBCTL, "-s", seg, "apply", "-f", yaml], check=True,
                       stdout=subprocess.DEVNULL)
    elif not late and not per_process:
        cbshm.apply(yaml, seg)
    port = free_port()
    env = dict(os.environ, CBSHM_SEGMENT=seg, DOWNSTREAM_PORT=str(down.port), ATTEMPT_LOG=log,
               BREAKER_MODE="per-process" if per_process else "shared",
               BREAKER_THRESHOLD=str(THRESHOLD), BREAKER_OPEN_TIMEOUT=str(OPEN_TIMEOUT))
    server = None
    try:
        server = Server(name, argv(port), cwd, env, port, os.path.join(work, "server.log"),
                        request)
        traffic = Clients(port, clients, request)
        time.sleep(1.0)
        if late:
            # Every worker has served unguarded; now the configuration comes.
            cbshm.apply(yaml, seg)
            time.sleep(1.0)
        trips_before = 0 if per_process else trips(seg, as_user)
        t_down = time.monotonic()
        down.stop()
        time.sleep(2 * OPEN_TIMEOUT + 0.5)  # two probe rounds while down
        t_up = time.monotonic()
        down.start()
        deadline = time.monotonic() + OPEN_TIMEOUT + 5
        while time.monotonic() < deadline:
            with traffic.lock:
                if any(r[1] == 200 and r[0] > t_up + 0.05 for r in traffic.records):
                    break
            time.sleep(0.1)
        time.sleep(0.3)
        traffic.stop()
        tried = [t for t in failed_calls(log) if t_down <= t < t_up]
        before_trip = [t for t in tried if t < t_down + OPEN_TIMEOUT * 0.75]
        at_death = [c for c in downstream_calls(log)
                    if c[3] == "failed" and c[1] < t_down <= c[2]]
        probes = [len(c) for c in clusters([t for t in tried if t >= t_down + OPEN_TIMEOUT * 0.75])]
        result = Outage(len(before_trip), len(at_death), probes, traffic.records, t_down, t_up,
                        trips_before, most_in_flight(log), "")
    finally:
        server_log = server.stop() if server is not None else ""
        down.stop()
        if not per_process:
            cbshm.destroy(seg)
        shutil.rmtree(work, ignore_errors=True)
    result.log = server_log
    return result


_serial = iter(range(1, 1 << 30))


def figures(label, shared, local=None, in_flight=WORKERS):
    """Prints one scenario's figures to stderr (ctest -V shows them).
    in_flight: the most calls in flight host-wide (check_shared)."""
    bound = THRESHOLD + in_flight - 1
    if local is None:
        line = ("%s: workers=%d threshold=%d calls_while_down=%d (bound %d; %d of them in "
                "flight when it died); probes per open period: %s; most calls in flight in "
                "one worker: %d" % (label, WORKERS, THRESHOLD, shared.before_trip, bound,
                                    shared.at_death, shared.probes, shared.in_flight))
    else:
        line = ("%s: workers=%d threshold=%d calls_while_down: shared=%d (bound %d), "
                "per-process=%d (about %d); probes per open period: shared=%s, per-process=%s"
                % (label, WORKERS, THRESHOLD, shared.before_trip, bound, local.before_trip,
                   WORKERS * THRESHOLD, shared.probes, local.probes))
    print("\n" + line, file=sys.stderr)


def check_shared(test, o, in_flight=WORKERS, overlap=1):
    """The shared breaker's promises, on one Outage. in_flight: the most
    calls in flight host-wide (WORKERS sync workers; the clients, for
    greenlet workers). overlap: the calls a worker that serves several
    requests at once must have had in flight together, so that the
    scenario did test that."""
    why = "calls before trip=%d (%d in flight at its death) probes=%s trips_before=%d " \
        "most in flight in one worker=%d" % (o.before_trip, o.at_death, o.probes,
                                             o.trips_before, o.in_flight)
    test.assertEqual(o.trips_before, 0, "the breaker tripped while the downstream was up: " + why)
    test.assertGreaterEqual(o.before_trip, THRESHOLD, why)
    test.assertLessEqual(o.before_trip, THRESHOLD + in_flight - 1, why)
    # Every worker answers 503 at once while the breaker is open.
    fast = [r for r in o.records
            if o.t_down + 0.5 < r[0] < o.t_down + OPEN_TIMEOUT - 0.2 and r[1] == 503]
    test.assertGreater(len(fast), 20, why)
    test.assertEqual(len({r[2] for r in fast}), WORKERS,
                     "workers answering 503: %s" % sorted({r[2] for r in fast}))
    # Fast: nine in ten within 0.25 s even on a loaded machine (a
    # scheduler stall may hold up the odd one).
    lat = sorted(r[3] for r in fast)
    test.assertLess(lat[len(lat) * 9 // 10], 0.25, "503 latencies: %s" % lat[-5:])
    test.assertFalse([r for r in o.records if o.t_down + 0.5 < r[0] < o.t_up and r[1] == 200],
                     why)
    # One probe per open period, host-wide.
    test.assertEqual(o.probes, [1, 1], why)
    # Recovered once the downstream was back.
    test.assertTrue(any(r[1] == 200 and r[0] > o.t_up for r in o.records), why)
    test.assertGreaterEqual(o.in_flight, overlap, why)


def check_per_process(test, shared, local):
    """What a breaker per worker does that the shared one does not: more
    calls reach the dead downstream than the shared bound allows, and more
    than one probe per open period."""
    why = "shared=%d per-process=%d probes: shared=%s per-process=%s" % (
        shared.before_trip, local.before_trip, shared.probes, local.probes)
    test.assertGreater(local.before_trip, THRESHOLD + WORKERS - 1, why)
    test.assertGreater(max(local.probes, default=0), 1, why)


def check_late(test, label, shared):
    """Workers started before the segment existed: the shared checks, and
    each worker said once that it ran unguarded and once that it attached
    (examples/python/app.py and examples/ruby/app.rb log both)."""
    figures(label, shared)
    check_shared(test, shared)
    test.assertEqual(shared.log.count("breaker downstream unguarded"), WORKERS, shared.log)
    test.assertEqual(shared.log.count("breaker downstream attached"), WORKERS, shared.log)
