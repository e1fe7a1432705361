"""Reader driver for the oracle harness (readers_test.go): Python's email package.

Input on stdin: messages, each framed as a decimal byte count, LF, then the bytes.
Output on stdout: one JSON line per message, {"python-default": R, "python-compat32": R},
where R is {"shown": [{"field", "name", "address", "text"}...], "error": "..."}: for each
sender field (From, Sender, Resent-From), what a client built on that policy puts in front
of a person.

- policy.default: the header object's .addresses (display name, addr_spec) and str(header),
  the decoded field as the policy renders it.
- compat32: email.utils.getaddresses over the raw values, with each display name decoded
  (decode_header + make_header), as clients written for the old API do; and the whole field
  decoded the same way, the text such a client prints as the From line.
"""

import email
import email.header
import email.policy
import email.utils
import json
import sys

FIELDS = ("From", "Sender", "Resent-From")


def decode(text):
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except Exception:
        return text


def read_default(data):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    shown = []
    for f in FIELDS:
        for h in msg.get_all(f) or []:
            try:
                shown.append({"field": f, "name": "", "address": "", "text": str(h)})
                for a in getattr(h, "addresses", ()):
                    shown.append({"field": f, "name": a.display_name, "address": a.addr_spec, "text": ""})
            except Exception as e:  # one field a reader cannot render hides no other
                shown.append({"field": f, "name": "", "address": "", "text": "", "error": repr(e)})
    return {"shown": shown}


def read_compat32(data):
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    shown = []
    for f in FIELDS:
        values = [str(v) for v in msg.get_all(f) or []]
        for v in values:
            shown.append({"field": f, "name": "", "address": "", "text": decode(v)})
        for name, addr in email.utils.getaddresses(values):
            shown.append({"field": f, "name": decode(name), "address": addr, "text": ""})
    return {"shown": shown}


def guard(fn, data):
    try:
        return fn(data)
    except Exception as e:
        return {"shown": [], "error": repr(e)}


def main():
    if sys.argv[1:] == ["--version"]:
        print(json.dumps({"python": sys.version.split()[0]}))
        return
    inp, out = sys.stdin.buffer, sys.stdout
    while True:
        line = inp.readline()
        if not line:
            return
        data = inp.read(int(line))
        res = {"python-default": guard(read_default, data), "python-compat32": guard(read_compat32, data)}
        # ASCII JSON: a lone surrogate (a byte email kept by surrogateescape) becomes
        # U+FFFD for the harness, as a terminal draws it.
        out.write(json.dumps(res) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
