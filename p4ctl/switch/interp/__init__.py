"""The BMv2 JSON interpreter: p4c-bm2-ss output compiled to Python, run as simple_switch.

One module per construct:

``loader``       the document, version check, hexstrings
``headers``      header types, instances, stacks, unions, field aliases: PHV layout
``metadata``     control-plane objects: actions, tables (+ const entries), registers,
                 counters, learn lists
``expressions``  expressions and lvalues
``primitives``   actions and the v1model/simple_switch primitives
``hashes``       hash algorithms (crc32, crc16, crcCCITT, crc*_custom, csum16, identity, xor)
``checksums``    named calculations and checksum verify/update
``parser``       parse states, select, errors
``controls``     tables, conditionals, action calls
``deparser``     emission
``program``      the whole program and simple_switch's ingress/egress flow
``runtime``      per-packet state and helpers of the generated code
``codegen``      the code generator's plumbing
``bench``        packets/s benchmark

Supported (bit-exact with behavioral-model as far as a packet or a controller
can observe): header types with fixed, signed and one variable-length field;
headers, metadata, header stacks, header unions, ``$valid$``; parser ``extract``
(regular, stack), ``extract_VL``, ``set`` (field, constant, lookahead,
expression), ``verify``, ``advance``, ``shift``, ``primitive``; select on fields,
stack fields and lookaheads with values, masks and default; parser errors into
``standard_metadata.parser_error``; tables with exact, lpm, ternary, range,
optional (as ternary) and valid keys, static key masks, default entries
(const or not), const entries (the table is then immutable, as in BMv2),
direct counters, ageing timestamps, ``next_tables`` by action or
``__HIT__``/``__MISS__``, ``base_default_next``; conditionals; ``action_calls``;
every expression operator of ``docs/JSON_format.md`` except union stacks; the
primitives listed in ``primitives``; calculations with field, constant, header
and payload inputs; checksums (generic and legacy ipv4); learn lists; field
lists for clone/resubmit/recirculate; simple_switch's standard metadata,
clone sessions and multicast groups (``Pipeline.mirror_sessions``,
``Pipeline.multicast_groups``).

Refused at load with a ``PipelineError`` naming the construct: meters (and
``execute_meter``), action profiles/selectors, extern instances, parser value
sets, header union stacks, header types with a P4_14 ``length_exp``, hash
algorithms ``xxh64``, ``toeplitz`` and ``random``, unknown primitives,
operators, parser ops, types, and malformed references.

Where the software switch differs from BMv2 (only for inputs on which BMv2
aborts, crashes or reads memory it should not): a division or modulo outside
BMv2's domain, an out-of-range header stack index, ``assert``/``assume``
failures and actions that loop without end drop the packet (BMv2 aborts the
process); a select-key lookahead past the end of the packet reads zeros; a
shift by 65536 bits or more gives 0; a packet that recirculates or resubmits
more than 256 times is dropped; reading a field of an invalid header returns
its last value in this packet or 0 (BMv2: whatever the PHV held). Packet
output order among clones follows one queue (BMv2's threads give no order).
"""
