"""mailsink: a real SMTP server (aiosmtpd) on loopback that saves every
message it accepts as DIR/NNNN.eml, with the envelope in DIR/NNNN.env.

    /usr/bin/python3 tests/integration/mailsink.py DIR PORT
"""
import os
import sys
import time

from aiosmtpd.controller import Controller


class Saver:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, f"{self.n:04d}")
        with open(base + ".env.tmp", "w") as f:
            f.write(envelope.mail_from + "\n" + "\n".join(envelope.rcpt_tos) + "\n")
        os.rename(base + ".env.tmp", base + ".env")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK saved"


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    os.makedirs(directory, exist_ok=True)
    c = Controller(Saver(directory), hostname="127.0.0.1", port=port)
    c.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()


if __name__ == "__main__":
    main()
