/*
 * p4ctl flow cache, TNA (Tofino).
 *
 * The same behaviour as flowcache_v1model.p4 wherever the architecture
 * allows; docs/pipeline.md lists every difference. The ones a controller sees:
 *
 *  - Overflow registers are split per way (ovf_w<N>_*): a Tofino register
 *    array can be accessed once per packet, so the unrolled walk needs one
 *    array per way. The key is held in 32-bit words and compared inside the
 *    stateful ALU. Overflow slot s is way s % BUCKET_WAYS, index s / BUCKET_WAYS.
 *  - The overflow bucket is the low bits of the hash (no modulo in the
 *    pipeline), so OVERFLOW_ENTRIES / BUCKET_WAYS must be a power of two:
 *    this build defaults to 8192 overflow entries (2048 lists of 4).
 *  - flow_last_seen holds global_tstamp[47:16] (units of 65.536 us), not
 *    microseconds; FLOW_ENTRIES may have to be reduced to fit a given chip.
 */
#include <core.p4>
#include <tna.p4>

#ifndef OVERFLOW_ENTRIES
#define OVERFLOW_ENTRIES 8192
#endif
#if ((OVERFLOW_ENTRIES / 4) & (OVERFLOW_ENTRIES / 4 - 1)) != 0
#error "OVERFLOW_ENTRIES / 4 (the overflow lists) must be a power of two on TNA"
#endif
#ifndef CPU_PORT
#define CPU_PORT 64
#endif

#include "include/defines.p4"
#include "include/headers.p4"
#include "include/parser.p4"

const DigestType_t DIGEST_NEW_FLOW = 1;
const DigestType_t DIGEST_FLOW_EVENT = 2;

struct ingress_metadata_t {
    local_metadata_t flow;
    bit<16> l4_residual;     /* TCP/UDP checksum minus the fields NAT may rewrite */
    bit<32> way_index;       /* overflow index within a way */
    bit<1> hit0;
    bit<1> hit1;
    bit<1> hit2;
    bit<1> hit3;
    /* the deparser's checksum updates: Tofino takes a 1-bit field as their
     * condition, nothing more */
    bit<1> upd_tcp;
    bit<1> upd_udp;
}

struct egress_headers_t { }
struct egress_metadata_t { }

parser FlowIngressParser(packet_in pkt, out headers_t hdr, out ingress_metadata_t meta,
                         out ingress_intrinsic_metadata_t ig_intr_md) {
    FlowHeaderParser() headers;
    Checksum() l4_csum;

    state start {
        /* bf-p4c leaves metadata uninitialised (@pa_no_init) unless told:
         * the fields read before any write (the ports of a key without
         * them, the match and rewrite flags, the overflow slot) start at 0
         * here, as v1model's metadata does. */
        meta.flow.key.src_port = 0;
        meta.flow.key.dst_port = 0;
        meta.flow.matched = 0;
        meta.flow.rewrite = 0;
        meta.flow.ovf_slot = 0;
        meta.upd_tcp = 0;
        meta.upd_udp = 0;
        pkt.extract(ig_intr_md);
        pkt.advance(PORT_METADATA_SIZE);
        transition select(ig_intr_md.ingress_port) {
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
        transition compute_residual;
    }

    /* The residual of the L4 checksum without addresses and ports, so the
     * deparser can add the (possibly rewritten) values back after NAT. */
    state compute_residual {
        l4_csum.subtract({ hdr.ipv4.src_addr, hdr.ipv4.dst_addr });
        transition select(hdr.tcp.isValid(), hdr.udp.isValid()) {
            (true, false): residual_tcp;
            (false, true): residual_udp;
            default: accept;
        }
    }

    state residual_tcp {
        l4_csum.subtract({ hdr.tcp.src_port, hdr.tcp.dst_port, hdr.tcp.checksum });
        meta.l4_residual = l4_csum.get();
        transition accept;
    }

    state residual_udp {
        l4_csum.subtract({ hdr.udp.src_port, hdr.udp.dst_port, hdr.udp.checksum });
        meta.l4_residual = l4_csum.get();
        transition accept;
    }
}

/* One overflow way: four 32-bit key words compared in the stateful ALUs. */
control OverflowWay(in local_metadata_t flow, in bit<32> index, out bit<1> hit) {
    /* valid (bit 31) ++ 7 zero bits ++ vrf (16) ++ proto (8) */
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES / BUCKET_WAYS, 0) key_meta;
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES / BUCKET_WAYS, 0) key_src;
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES / BUCKET_WAYS, 0) key_dst;
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES / BUCKET_WAYS, 0) key_ports;

    bit<32> want_meta = 0x80000000 | (bit<32>) flow.key.vrf << 8 | (bit<32>) flow.key.proto;
    bit<32> want_ports = flow.key.src_port ++ flow.key.dst_port;

    RegisterAction<bit<32>, bit<32>, bit<1>>(key_meta) match_meta = {
        void apply(inout bit<32> v, out bit<1> m) { m = (v == want_meta) ? 1w1 : 1w0; }
    };
    RegisterAction<bit<32>, bit<32>, bit<1>>(key_src) match_src = {
        void apply(inout bit<32> v, out bit<1> m) { m = (v == flow.key.src_addr) ? 1w1 : 1w0; }
    };
    RegisterAction<bit<32>, bit<32>, bit<1>>(key_dst) match_dst = {
        void apply(inout bit<32> v, out bit<1> m) { m = (v == flow.key.dst_addr) ? 1w1 : 1w0; }
    };
    RegisterAction<bit<32>, bit<32>, bit<1>>(key_ports) match_ports = {
        void apply(inout bit<32> v, out bit<1> m) { m = (v == want_ports) ? 1w1 : 1w0; }
    };

    apply {
        bit<1> m0 = match_meta.execute(index);
        bit<1> m1 = match_src.execute(index);
        bit<1> m2 = match_dst.execute(index);
        bit<1> m3 = match_ports.execute(index);
        hit = m0 & m1 & m2 & m3;
    }
}

control FlowIngress(inout headers_t hdr, inout ingress_metadata_t meta,
                    in ingress_intrinsic_metadata_t ig_intr_md,
                    in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                    inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                    inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {

    DirectCounter<bit<64>>(CounterType_t.PACKETS_AND_BYTES) flow_counter;
    Counter<bit<64>, bit<32>>(OVERFLOW_ENTRIES, CounterType_t.PACKETS_AND_BYTES) overflow_counter;

    Register<bit<8>, bit<32>>(FLOW_SLOTS, 0) flow_tcp_state;
    Register<bit<32>, bit<32>>(FLOW_SLOTS, 0) flow_last_seen;

    /* Overflow action per slot: kind (bits 31-24) ++ 0 (15) ++ egress port (bits 8-0). */
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES, 0) ovf_action;
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES, 0) ovf_nat_src_addr;
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES, 0) ovf_nat_dst_addr;
    Register<bit<32>, bit<32>>(OVERFLOW_ENTRIES, 0) ovf_nat_ports;

    OverflowWay() way0;
    OverflowWay() way1;
    OverflowWay() way2;
    OverflowWay() way3;

    Hash<bit<32>>(HashAlgorithm_t.CRC32) bucket_hash;

    RegisterAction<bit<32>, bit<32>, bit<32>>(ovf_action) read_ovf_action = {
        void apply(inout bit<32> v, out bit<32> r) { r = v; }
    };
    RegisterAction<bit<32>, bit<32>, bit<32>>(ovf_nat_src_addr) read_nat_src = {
        void apply(inout bit<32> v, out bit<32> r) { r = v; }
    };
    RegisterAction<bit<32>, bit<32>, bit<32>>(ovf_nat_dst_addr) read_nat_dst = {
        void apply(inout bit<32> v, out bit<32> r) { r = v; }
    };
    RegisterAction<bit<32>, bit<32>, bit<32>>(ovf_nat_ports) read_nat_ports = {
        void apply(inout bit<32> v, out bit<32> r) { r = v; }
    };
    RegisterAction<bit<32>, bit<32>, bit<32>>(flow_last_seen) touch_last_seen = {
        void apply(inout bit<32> v) { v = ig_prsr_md.global_tstamp[47:16]; }
    };

    bit<8> tcp_seen = 0;
    RegisterAction<bit<8>, bit<32>, bit<8>>(flow_tcp_state) update_tcp_state = {
        void apply(inout bit<8> v, out bit<8> old) { old = v; v = v | tcp_seen; }
    };

    action drop() {
        ig_dprsr_md.drop_ctl = 1;
    }

    action set_vrf(bit<16> vrf) {
        meta.flow.key.vrf = vrf;
    }

    table port_vrf {
        key = { meta.flow.in_port: exact @name("in_port"); }
        actions = { set_vrf; }
        default_action = set_vrf(0);
        size = PORT_VRF_ENTRIES;
    }

    action flow_forward(bit<32> flow_id, port_t port) {
        meta.flow.flow_id = flow_id;
        ig_tm_md.ucast_egress_port = port;
        flow_counter.count();
    }

    action flow_drop(bit<32> flow_id) {
        meta.flow.flow_id = flow_id;
        ig_dprsr_md.drop_ctl = 1;
        flow_counter.count();
    }

    action flow_nat(bit<32> flow_id, port_t port, ipv4_addr_t src_addr, ipv4_addr_t dst_addr,
                    bit<16> src_port, bit<16> dst_port) {
        meta.flow.flow_id = flow_id;
        ig_tm_md.ucast_egress_port = port;
        meta.flow.rewrite = 1;
        hdr.ipv4.src_addr = src_addr;
        hdr.ipv4.dst_addr = dst_addr;
        meta.flow.key.src_port = src_port;   /* written to TCP/UDP below */
        meta.flow.key.dst_port = dst_port;
        flow_counter.count();
    }

    @idletime_precision(3)
    table flow_table {
        key = {
            meta.flow.key.vrf: exact @name("vrf");
            meta.flow.key.src_addr: exact @name("src_addr");
            meta.flow.key.dst_addr: exact @name("dst_addr");
            meta.flow.key.proto: exact @name("proto");
            meta.flow.key.src_port: exact @name("src_port");
            meta.flow.key.dst_port: exact @name("dst_port");
        }
        actions = { flow_forward; flow_drop; flow_nat; @defaultonly NoAction; }
        const default_action = NoAction();
        counters = flow_counter;
        idle_timeout = true;
        size = FLOW_ENTRIES;
    }

    action miss_drop() {
        ig_dprsr_md.drop_ctl = 1;
    }

    action miss_to_cpu() {
        ig_tm_md.ucast_egress_port = CPU_PORT;
        hdr.packet_in.setValid();
        hdr.packet_in.ingress_port = meta.flow.in_port;
        hdr.packet_in.reason = PACKET_IN_NEW_FLOW;
        hdr.packet_in._pad = 0;
    }

    table miss_policy {
        key = { }
        actions = { miss_drop; miss_to_cpu; }
        default_action = miss_drop();
        size = 1;
    }

    apply {
        if (hdr.packet_out.isValid()) {
            meta.flow.in_port = hdr.packet_out.ingress_port;
            if (hdr.packet_out.mode == PACKET_OUT_DIRECT) {
                ig_tm_md.ucast_egress_port = hdr.packet_out.egress_port;
                hdr.packet_out.setInvalid();
                ig_tm_md.bypass_egress = 1;
                exit;
            }
            hdr.packet_out.setInvalid();
        } else {
            meta.flow.in_port = ig_intr_md.ingress_port;
        }

        if (!hdr.ipv4.isValid() || hdr.ipv4.version != 4 || hdr.ipv4.ihl < 5) {
            drop();
            exit;
        }

        port_vrf.apply();
        meta.flow.key.src_addr = hdr.ipv4.src_addr;
        meta.flow.key.dst_addr = hdr.ipv4.dst_addr;
        meta.flow.key.proto = hdr.ipv4.protocol;
        if (hdr.tcp.isValid()) {
            meta.flow.key.src_port = hdr.tcp.src_port;
            meta.flow.key.dst_port = hdr.tcp.dst_port;
        } else if (hdr.udp.isValid()) {
            meta.flow.key.src_port = hdr.udp.src_port;
            meta.flow.key.dst_port = hdr.udp.dst_port;
        } else if (hdr.icmp.isValid()
                   && (hdr.icmp.type == ICMP_ECHO_REQUEST || hdr.icmp.type == ICMP_ECHO_REPLY)) {
            meta.flow.key.src_port = hdr.icmp.identifier;
            meta.flow.key.dst_port = hdr.icmp.identifier;
        }

        meta.flow.bucket_hash = bucket_hash.get({ meta.flow.key.vrf, meta.flow.key.src_addr,
                                                  meta.flow.key.dst_addr, meta.flow.key.proto,
                                                  meta.flow.key.src_port,
                                                  meta.flow.key.dst_port });

        if (flow_table.apply().hit) {
            meta.flow.matched = 1;
        } else {
            meta.way_index = meta.flow.bucket_hash & (OVERFLOW_ENTRIES / BUCKET_WAYS - 1);
            way0.apply(meta.flow, meta.way_index, meta.hit0);
            way1.apply(meta.flow, meta.way_index, meta.hit1);
            way2.apply(meta.flow, meta.way_index, meta.hit2);
            way3.apply(meta.flow, meta.way_index, meta.hit3);
            if (meta.hit0 == 1) {
                meta.flow.ovf_slot = meta.way_index * BUCKET_WAYS + 0;
            } else if (meta.hit1 == 1) {
                meta.flow.ovf_slot = meta.way_index * BUCKET_WAYS + 1;
            } else if (meta.hit2 == 1) {
                meta.flow.ovf_slot = meta.way_index * BUCKET_WAYS + 2;
            } else if (meta.hit3 == 1) {
                meta.flow.ovf_slot = meta.way_index * BUCKET_WAYS + 3;
            }
            if ((meta.hit0 | meta.hit1 | meta.hit2 | meta.hit3) == 1) {
                meta.flow.matched = 1;
                bit<32> act = read_ovf_action.execute(meta.flow.ovf_slot);
                overflow_counter.count(meta.flow.ovf_slot);
                meta.flow.flow_id = FLOW_ENTRIES + meta.flow.ovf_slot;
                bit<8> kind = act[31:24];
                ig_tm_md.ucast_egress_port = act[8:0];
                if (kind == OVF_ACTION_NAT) {
                    meta.flow.rewrite = 1;
                    hdr.ipv4.src_addr = read_nat_src.execute(meta.flow.ovf_slot);
                    hdr.ipv4.dst_addr = read_nat_dst.execute(meta.flow.ovf_slot);
                    bit<32> ports = read_nat_ports.execute(meta.flow.ovf_slot);
                    meta.flow.key.src_port = ports[31:16];
                    meta.flow.key.dst_port = ports[15:0];
                } else if (kind != OVF_ACTION_FORWARD) {
                    drop();
                }
            }
        }

        if (meta.flow.rewrite == 1) {
            /* A packet with IPv4 options cannot be translated: its TCP/UDP
             * header was not parsed, and the deparser's header checksum leaves
             * the options out. Dropped, rather than sent on with bad checksums. */
            if (hdr.ipv4.ihl != 5) {
                drop();
            }
            if (hdr.tcp.isValid()) {
                hdr.tcp.src_port = meta.flow.key.src_port;
                hdr.tcp.dst_port = meta.flow.key.dst_port;
                meta.upd_tcp = 1;
            } else if (hdr.udp.isValid()) {
                hdr.udp.src_port = meta.flow.key.src_port;
                hdr.udp.dst_port = meta.flow.key.dst_port;
                if (hdr.udp.checksum != 0) {  /* 0: the sender did not compute one */
                    meta.upd_udp = 1;
                }
            }
        }

        if (meta.flow.matched == 1) {
            touch_last_seen.execute(meta.flow.flow_id);
            if (hdr.tcp.isValid()) {
                if ((hdr.tcp.flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
                    tcp_seen = FLOW_TCP_SYN;
                } else if ((hdr.tcp.flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
                    tcp_seen = FLOW_TCP_SYNACK;
                } else if ((hdr.tcp.flags & TCP_ACK) != 0) {
                    /* Tofino: ESTABLISHED is set on the first ACK whether or not a
                     * SYN was seen (the state is only known inside the ALU). */
                    tcp_seen = FLOW_TCP_ESTABLISHED;
                }
                if ((hdr.tcp.flags & TCP_FIN) != 0) {
                    tcp_seen = tcp_seen | FLOW_TCP_FIN;
                }
                if ((hdr.tcp.flags & TCP_RST) != 0) {
                    tcp_seen = tcp_seen | FLOW_TCP_RST;
                }
                bit<8> old_state = update_tcp_state.execute(meta.flow.flow_id);
                meta.flow.tcp_state = old_state | tcp_seen;
                if ((meta.flow.tcp_state & FLOW_TCP_CLOSING) != (old_state & FLOW_TCP_CLOSING)) {
                    ig_dprsr_md.digest_type = DIGEST_FLOW_EVENT;
                }
            }
        } else {
            ig_dprsr_md.digest_type = DIGEST_NEW_FLOW;
            miss_policy.apply();
        }
    }
}

control FlowIngressDeparser(packet_out pkt, inout headers_t hdr, in ingress_metadata_t meta,
                            in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    Checksum() ipv4_csum;
    Checksum() l4_csum;
    Digest<new_flow_digest_t>() new_flow_digest;
    Digest<flow_event_digest_t>() flow_event_digest;

    apply {
        if (meta.flow.rewrite == 1) {
            hdr.ipv4.hdr_checksum = ipv4_csum.update({
                hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
                hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset,
                hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr });
        }
        if (meta.upd_tcp == 1) {
            hdr.tcp.checksum = l4_csum.update({
                hdr.ipv4.src_addr, hdr.ipv4.dst_addr, hdr.tcp.src_port, hdr.tcp.dst_port,
                meta.l4_residual });
        }
        if (meta.upd_udp == 1) {
            hdr.udp.checksum = l4_csum.update({
                hdr.ipv4.src_addr, hdr.ipv4.dst_addr, hdr.udp.src_port, hdr.udp.dst_port,
                meta.l4_residual }, true);
        }
        if (ig_dprsr_md.digest_type == DIGEST_NEW_FLOW) {
            new_flow_digest.pack({ meta.flow.key.vrf, meta.flow.key.src_addr,
                                   meta.flow.key.dst_addr, meta.flow.key.proto,
                                   meta.flow.key.src_port, meta.flow.key.dst_port,
                                   meta.flow.in_port, meta.flow.bucket_hash });
        } else if (ig_dprsr_md.digest_type == DIGEST_FLOW_EVENT) {
            flow_event_digest.pack({ meta.flow.flow_id, meta.flow.tcp_state });
        }
        pkt.emit(hdr.packet_in);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.tcp);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.icmp);
    }
}

parser FlowEgressParser(packet_in pkt, out egress_headers_t hdr, out egress_metadata_t meta,
                        out egress_intrinsic_metadata_t eg_intr_md) {
    state start {
        pkt.extract(eg_intr_md);
        transition accept;
    }
}

control FlowEgress(inout egress_headers_t hdr, inout egress_metadata_t meta,
                   in egress_intrinsic_metadata_t eg_intr_md,
                   in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                   inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                   inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    apply { }
}

control FlowEgressDeparser(packet_out pkt, inout egress_headers_t hdr, in egress_metadata_t meta,
                           in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
    apply { pkt.emit(hdr); }
}

Pipeline(FlowIngressParser(), FlowIngress(), FlowIngressDeparser(),
         FlowEgressParser(), FlowEgress(), FlowEgressDeparser()) pipe;

Switch(pipe) main;
