/*
 * p4ctl flow cache, v1model (BMv2 simple_switch_grpc).
 *
 * A per-session flow table keyed on VRF + IPv4 5-tuple, as in the
 * OpenContrail vRouter: an exact-match main table with idle timeout and a
 * direct counter, backed by overflow register arrays that the data plane
 * searches on a miss (BUCKET_WAYS entries per overflow bucket, walked
 * unrolled). A packet that misses both raises a new-flow digest and is
 * dropped, or, in hold mode, sent to the controller. docs/pipeline.md has the
 * object table and the packet walks.
 */
#include <core.p4>
#include <v1model.p4>

#include "include/defines.p4"
#include "include/headers.p4"
#include "include/parser.p4"

parser FlowParser(packet_in pkt, out headers_t hdr, inout local_metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    FlowHeaderParser() headers;

    state start {
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_headers;
        }
    }

    state parse_packet_out {
        pkt.extract(hdr.packet_out);
        transition parse_headers;
    }

    state parse_headers {
        headers.apply(pkt, hdr);
        transition accept;
    }
}

control FlowVerifyChecksum(inout headers_t hdr, inout local_metadata_t meta) {
    apply {
        verify_checksum(hdr.ipv4.isValid() && hdr.ipv4.ihl == 5,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset,
              hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control FlowIngress(inout headers_t hdr, inout local_metadata_t meta,
                    inout standard_metadata_t standard_metadata) {

    /* Direct counter of the main table: packets and bytes per entry. */
    @id(1)
    direct_counter(CounterType.packets_and_bytes) flow_counter;

    /* Indexed counters of the overflow slots (index: overflow slot). */
    @id(2)
    counter(OVERFLOW_ENTRIES, CounterType.packets_and_bytes) overflow_counter;

    /* Per-flow state, indexed by flow id (main and overflow slots). */
    @id(1)
    register<bit<8>>(FLOW_SLOTS) flow_tcp_state;
    @id(2)
    register<bit<48>>(FLOW_SLOTS) flow_last_seen;

    /* Overflow slots, written by the controller only. A slot is used when its
     * valid bit is 1; the controller writes the key and action first and the
     * valid bit last, and clears the valid bit first on removal. */
    @id(3)
    register<bit<1>>(OVERFLOW_ENTRIES) ovf_valid;
    @id(4)
    register<bit<64>>(OVERFLOW_ENTRIES) ovf_key_addrs;   /* src_addr ++ dst_addr */
    @id(5)
    register<bit<56>>(OVERFLOW_ENTRIES) ovf_key_rest;    /* vrf ++ proto ++ src_port ++ dst_port */
    @id(6)
    register<bit<8>>(OVERFLOW_ENTRIES) ovf_action;       /* OVF_ACTION_* */
    @id(7)
    register<bit<16>>(OVERFLOW_ENTRIES) ovf_port;        /* egress port (forward, NAT) */
    @id(8)
    register<bit<64>>(OVERFLOW_ENTRIES) ovf_nat_addrs;   /* new src_addr ++ new dst_addr */
    @id(9)
    register<bit<32>>(OVERFLOW_ENTRIES) ovf_nat_ports;   /* new src_port ++ new dst_port */

    @id(2)
    action set_vrf(bit<16> vrf) {
        meta.key.vrf = vrf;
    }

    /* Ingress port -> VRF. Unknown ports are in VRF 0. */
    @id(1)
    table port_vrf {
        key = { meta.in_port: exact @name("in_port"); }
        actions = { set_vrf; }
        default_action = set_vrf(0);
        size = PORT_VRF_ENTRIES;
    }

    @id(3)
    action flow_forward(bit<32> flow_id, port_t port) {
        meta.flow_id = flow_id;
        standard_metadata.egress_spec = port;
    }

    @id(4)
    action flow_drop(bit<32> flow_id) {
        meta.flow_id = flow_id;
        mark_to_drop(standard_metadata);
    }

    /* Rewrite both addresses and ports (the controller passes the original
     * value for a field it does not translate) and forward. The TCP/UDP
     * checksum is updated from what changed (RFC 1624), not recomputed over
     * the payload: a first fragment's checksum covers the whole datagram,
     * of which it carries only a part. The IPv4 header checksum is
     * recomputed in FlowComputeChecksum. */
    @id(5)
    action flow_nat(bit<32> flow_id, port_t port, ipv4_addr_t src_addr, ipv4_addr_t dst_addr,
                    bit<16> src_port, bit<16> dst_port) {
        meta.flow_id = flow_id;
        standard_metadata.egress_spec = port;
        meta.rewrite = 1;
        /* RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m') over every 16-bit word m
         * that became m', which is csum16 of those words (BMv2's csum16 is
         * the complement of their one's complement sum). */
        if (hdr.tcp.isValid()) {
            hash(hdr.tcp.checksum, HashAlgorithm.csum16, 16w0,
                 { ~hdr.tcp.checksum, ~hdr.ipv4.src_addr, src_addr, ~hdr.ipv4.dst_addr, dst_addr,
                   ~hdr.tcp.src_port, src_port, ~hdr.tcp.dst_port, dst_port },
                 32w65536);
            hdr.tcp.src_port = src_port;
            hdr.tcp.dst_port = dst_port;
        }
        if (hdr.udp.isValid()) {
            if (hdr.udp.checksum != 0) {  /* 0: the sender computed none */
                hash(hdr.udp.checksum, HashAlgorithm.csum16, 16w0,
                     { ~hdr.udp.checksum, ~hdr.ipv4.src_addr, src_addr, ~hdr.ipv4.dst_addr,
                       dst_addr, ~hdr.udp.src_port, src_port, ~hdr.udp.dst_port, dst_port },
                     32w65536);
                if (hdr.udp.checksum == 0) {
                    hdr.udp.checksum = 16w0xffff;  /* RFC 768: a computed 0 is sent as all ones */
                }
            }
            hdr.udp.src_port = src_port;
            hdr.udp.dst_port = dst_port;
        }
        hdr.ipv4.src_addr = src_addr;
        hdr.ipv4.dst_addr = dst_addr;
    }

    /* The main flow table: one entry per direction of a session. */
    @id(2)
    table flow_table {
        key = {
            meta.key.vrf: exact @name("vrf");
            meta.key.src_addr: exact @name("src_addr");
            meta.key.dst_addr: exact @name("dst_addr");
            meta.key.proto: exact @name("proto");
            meta.key.src_port: exact @name("src_port");
            meta.key.dst_port: exact @name("dst_port");
        }
        actions = { flow_forward; flow_drop; flow_nat; @defaultonly NoAction; }
        const default_action = NoAction();
        counters = flow_counter;
        support_timeout = true;
        size = FLOW_ENTRIES;
    }

    @id(6)
    action miss_drop() {
        mark_to_drop(standard_metadata);
    }

    /* Hold mode: the packet goes to the controller, which re-injects it with
     * packet-out once the flow is installed. */
    @id(7)
    action miss_to_cpu() {
        standard_metadata.egress_spec = CPU_PORT;
        hdr.packet_in.setValid();
        hdr.packet_in.ingress_port = meta.in_port;
        hdr.packet_in.reason = PACKET_IN_NEW_FLOW;
        hdr.packet_in._pad = 0;
    }

    /* What happens to a packet that missed both the main table and the
     * overflow area, after its digest: the controller sets the default action
     * (drop, or hold mode). Keyless: only its default entry is used. */
    @id(3)
    table miss_policy {
        key = { }
        actions = { miss_drop; miss_to_cpu; }
        default_action = miss_drop();
        size = 1;
    }

    /* One overflow way: a valid slot whose key equals the packet's key. */
#define OVF_PROBE(WAY)                                                            \
    {                                                                            \
        bit<32> slot = meta.ovf_bucket * BUCKET_WAYS + WAY;                      \
        bit<1> valid;                                                            \
        bit<64> addrs;                                                           \
        bit<56> rest;                                                            \
        ovf_valid.read(valid, slot);                                             \
        ovf_key_addrs.read(addrs, slot);                                         \
        ovf_key_rest.read(rest, slot);                                           \
        if (meta.matched == 0 && valid == 1                                      \
                && addrs == meta.key.src_addr ++ meta.key.dst_addr               \
                && rest == meta.key.vrf ++ meta.key.proto                        \
                           ++ meta.key.src_port ++ meta.key.dst_port) {          \
            meta.matched = 1;                                                    \
            meta.ovf_slot = slot;                                                \
        }                                                                        \
    }

    apply {
        if (hdr.packet_out.isValid()) {
            meta.in_port = hdr.packet_out.ingress_port;
            if (hdr.packet_out.mode == PACKET_OUT_DIRECT) {
                standard_metadata.egress_spec = hdr.packet_out.egress_port;
                hdr.packet_out.setInvalid();
                exit;
            }
            hdr.packet_out.setInvalid();
        } else {
            meta.in_port = standard_metadata.ingress_port;
        }

        /* Only IPv4 is cached; a bad IPv4 header checksum is dropped, and so
         * is a header that is not IPv4's (version) or shorter than 20 bytes
         * (ihl): it would be learned as a flow of garbage. */
        if (!hdr.ipv4.isValid() || standard_metadata.checksum_error == 1
                || hdr.ipv4.version != 4 || hdr.ipv4.ihl < 5) {
            mark_to_drop(standard_metadata);
            exit;
        }

        port_vrf.apply();
        meta.key.src_addr = hdr.ipv4.src_addr;
        meta.key.dst_addr = hdr.ipv4.dst_addr;
        meta.key.proto = hdr.ipv4.protocol;
        if (hdr.tcp.isValid()) {
            meta.key.src_port = hdr.tcp.src_port;
            meta.key.dst_port = hdr.tcp.dst_port;
        } else if (hdr.udp.isValid()) {
            meta.key.src_port = hdr.udp.src_port;
            meta.key.dst_port = hdr.udp.dst_port;
        } else if (hdr.icmp.isValid()
                   && (hdr.icmp.type == ICMP_ECHO_REQUEST || hdr.icmp.type == ICMP_ECHO_REPLY)) {
            meta.key.src_port = hdr.icmp.identifier;
            meta.key.dst_port = hdr.icmp.identifier;
        }

        /* The bucket hash: the raw crc32 of the key (max 2^32 keeps all bits). */
        hash(meta.bucket_hash, HashAlgorithm.crc32, 32w0,
             { meta.key.vrf, meta.key.src_addr, meta.key.dst_addr,
               meta.key.proto, meta.key.src_port, meta.key.dst_port },
             64w4294967296);

        if (flow_table.apply().hit) {
            meta.matched = 1;
        } else {
            /* The overflow list: bucket_hash % OVERFLOW_BUCKETS. BMv2 has no
             * run-time modulo; its hash computes base + H % max, and the
             * identity hash of the 32-bit bucket hash is the hash itself. */
            hash(meta.ovf_bucket, HashAlgorithm.identity, 32w0, { meta.bucket_hash },
                 (bit<32>) OVERFLOW_BUCKETS);
            OVF_PROBE(0)
            OVF_PROBE(1)
            OVF_PROBE(2)
            OVF_PROBE(3)
            if (meta.matched == 1) {
                bit<8> kind;
                bit<16> port;
                bit<64> nat_addrs;
                bit<32> nat_ports;
                ovf_action.read(kind, meta.ovf_slot);
                ovf_port.read(port, meta.ovf_slot);
                ovf_nat_addrs.read(nat_addrs, meta.ovf_slot);
                ovf_nat_ports.read(nat_ports, meta.ovf_slot);
                overflow_counter.count(meta.ovf_slot);
                bit<32> flow_id = FLOW_ENTRIES + meta.ovf_slot;
                if (kind == OVF_ACTION_FORWARD) {
                    flow_forward(flow_id, (port_t) port);
                } else if (kind == OVF_ACTION_NAT) {
                    flow_nat(flow_id, (port_t) port, nat_addrs[63:32], nat_addrs[31:0],
                             nat_ports[31:16], nat_ports[15:0]);
                } else {
                    flow_drop(flow_id);
                }
            }
        }

        if (meta.matched == 1) {
            /* A packet with IPv4 options cannot be translated: its TCP/UDP
             * header was not parsed, so that checksum could not follow the
             * rewritten addresses (and the header's own leaves out the
             * options). Dropped, rather than sent on with a bad checksum. */
            if (meta.rewrite == 1 && hdr.ipv4.ihl != 5) {
                mark_to_drop(standard_metadata);
            }
            flow_last_seen.write(meta.flow_id, standard_metadata.ingress_global_timestamp);
            if (hdr.tcp.isValid()) {
                bit<8> old_state;
                flow_tcp_state.read(old_state, meta.flow_id);
                bit<8> seen = 0;
                bit<8> f = hdr.tcp.flags;
                if ((f & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
                    seen = seen | FLOW_TCP_SYN;
                } else if ((f & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
                    seen = seen | FLOW_TCP_SYNACK;
                } else if ((f & TCP_ACK) != 0 && (old_state & (FLOW_TCP_SYN | FLOW_TCP_SYNACK)) != 0) {
                    seen = seen | FLOW_TCP_ESTABLISHED;
                }
                if ((f & TCP_FIN) != 0) {
                    seen = seen | FLOW_TCP_FIN;
                }
                if ((f & TCP_RST) != 0) {
                    seen = seen | FLOW_TCP_RST;
                }
                meta.tcp_state = old_state | seen;
                if (meta.tcp_state != old_state) {
                    flow_tcp_state.write(meta.flow_id, meta.tcp_state);
                    /* FIN or RST newly seen: tell the controller, once. */
                    if ((meta.tcp_state & FLOW_TCP_CLOSING) != (old_state & FLOW_TCP_CLOSING)) {
                        digest<flow_event_digest_t>(1, { meta.flow_id, meta.tcp_state });
                    }
                }
            }
        } else {
            digest<new_flow_digest_t>(1, { meta.key.vrf, meta.key.src_addr, meta.key.dst_addr,
                                           meta.key.proto, meta.key.src_port, meta.key.dst_port,
                                           meta.in_port, meta.bucket_hash });
            miss_policy.apply();
        }
    }
}

control FlowEgress(inout headers_t hdr, inout local_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    apply { }
}

/* After NAT the IPv4 header checksum is recomputed (NAT forwards only
 * headers without options); TCP/UDP checksums were updated by flow_nat.
 * Untouched packets are left exactly as they came in. */
control FlowComputeChecksum(inout headers_t hdr, inout local_metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid() && meta.rewrite == 1,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset,
              hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr },
            hdr.ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

control FlowDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.packet_in);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.tcp);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.icmp);
    }
}

V1Switch(FlowParser(), FlowVerifyChecksum(), FlowIngress(), FlowEgress(),
         FlowComputeChecksum(), FlowDeparser()) main;
