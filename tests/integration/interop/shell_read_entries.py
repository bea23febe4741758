"""Run by the p4runtime-shell virtual environment (not the project's): read a table, print JSON.

Usage: ``python shell_read_entries.py GRPC_ADDR DEVICE_ID TABLE``

Connects with p4runtime-shell as a backup client (election id (0, 1), no
pipeline push: the P4Info comes from the switch), reads every entry of
TABLE with p4runtime-shell's ``TableEntry(...).read()``, tries one write (a
backup must be refused), and prints one JSON object on stdout:

    {"entries": [{"match": {...}, "action": ..., "params": {...}, "text": ...}],
     "write_error": "..."}

Values are decoded with p4runtime-shell's own P4Info context. This file
imports nothing from the project: p4runtime-shell pins old protobuf and
p4runtime packages that cannot share a process with the project's.
"""

import json
import sys

import p4runtime_sh.shell as sh

context = sh.context  # the P4Info context p4runtime-shell fills in setup()


def main() -> None:
    grpc_addr, device_id, table = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sh.setup(device_id=device_id, grpc_addr=grpc_addr, election_id=(0, 1), config=None,
             verbose=False)
    try:
        entries = []
        for entry in sh.TableEntry(table).read():
            msg = entry.msg()
            match = {
                context.get_mf_name(table, fm.field_id): int.from_bytes(fm.exact.value, "big")
                for fm in msg.match
            }
            action = context.get_name_from_id(msg.action.action.action_id)
            params = {
                context.get_param_name(action, p.param_id): int.from_bytes(p.value, "big")
                for p in msg.action.action.params
            }
            entries.append({"match": match, "action": action, "params": params,
                            "text": str(entry)})
        write_error = ""
        try:
            extra = sh.TableEntry(table)(action="FlowIngress.flow_drop")
            for mf in context.get_table(table).match_fields:
                extra.match[mf.name] = "7"
            extra.action["flow_id"] = "7"
            extra.insert()
            write_error = "accepted"
        except Exception as exc:  # p4runtime-shell's P4RuntimeWriteException / P4RuntimeException
            write_error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"entries": entries, "write_error": write_error}))
    finally:
        sh.teardown()


if __name__ == "__main__":
    main()
