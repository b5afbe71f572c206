"""A real DNS server on loopback for mail authentication tests: dnsmasq
answering only from the records it is given (TXT, A, MX) and NXDOMAIN for
anything else under the test domains, nothing forwarded."""
import shutil
import subprocess
import time

import tdharness

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def _chunks(text, n=250):
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


class LoopDNS:
    def __init__(self, zones=("test",)):
        self.port = tdharness.free_port()
        self.zones = zones
        self.proc = None
        self.txt = {}   # name -> [record, ...]
        self.a = {}     # name -> [ip, ...]
        self.mx = {}    # name -> [host, ...]

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.stop()
        args = [DNSMASQ, "--keep-in-foreground", "--port", str(self.port), "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--no-poll", "--user=root", "--pid-file=",
                "--cache-size=0", "--log-facility=-"]
        args += [f"--local=/{z}/" for z in self.zones]
        for name, recs in self.txt.items():
            for rec in recs:
                # a record over 255 bytes goes as several strings (joined by readers)
                args.append("--txt-record=" + ",".join([name] + _chunks(rec)))
        for name, ips in self.a.items():
            for ip in ips:
                args.append(f"--host-record={name},{ip}")
        for name, hosts in self.mx.items():
            for i, h in enumerate(hosts):
                args.append(f"--mx-host={name},{h},{10 + i}")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # ready when it answers on its port
        for _ in range(100):
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq failed: " + self.proc.stderr.read())
            p = subprocess.run(["ss", "-Hlun", f"sport = :{self.port}"], capture_output=True, text=True)
            if str(self.port) in p.stdout:
                return self
            time.sleep(0.05)
        raise RuntimeError("dnsmasq did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
